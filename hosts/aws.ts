import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { TunnelHost } from "../components/host";
import { throwIfInvalid } from "../lib/validate";
import { AwsHostsArgs, checkAwsHostsArgs } from "./awsArgs";
import { awsAmi, awsInstances, awsKeys } from "./awsInstances";
import { awsNetwork } from "./awsNetwork";
import { awsSecurityGroups, awsTunnelRules } from "./awsSecurity";
import { awsTunnelHost } from "./awsTunnelHosts";
import { FleetFactory, byName } from "./fleet";

export type { AwsHostsArgs, AwsUdpRule } from "./awsArgs";
export { checkAwsHostsArgs, udpRuleName } from "./awsArgs";
export type { CloudConfigArgs } from "./awsInstances";
export { cloudConfig, publicKeyLine } from "./awsInstances";
export { CREATED_SUBNET_CIDR, CREATED_VPC_CIDR } from "./awsNetwork";
export { AWS_POLL_DIALS, AWS_POLL_TIMEOUTS, parsePollOutput, pollScript } from "./awsTunnelHosts";

/**
 * One EC2 instance per host of the topology, all in one subnet: an AMI whose stock kernel ships
 * fou and ipip (Debian 12 by default), an SSH key made for the stack, SSH open to the operator's
 * network only, and between the hosts nothing but ICMP and, per tunnel end, its UDP port from its
 * peer's private address. Each host is ready once a poll over SSH has answered with its underlay
 * device. Every resource is a child of the component.
 */
export class AwsHosts extends pulumi.ComponentResource {
    public readonly hosts: TunnelHost[];
    /** The stack's SSH private key, OpenSSH format (secret). */
    public readonly privateKey: pulumi.Output<string>;
    /** Host name → its SSH host key (`ssh-ed25519 AAAA…`), made in the stack and pinned in every connection. */
    public readonly hostKeys: pulumi.Output<Record<string, string>>;
    public readonly amiId: pulumi.Output<string>;
    /** Host name → public address (SSH). */
    public readonly publicIps: pulumi.Output<Record<string, string>>;
    /** Host name → private address (the tunnel's underlay). */
    public readonly privateIps: pulumi.Output<Record<string, string>>;
    /** Host name → `ssh -i key.pem <user>@<public ip>`, with the key from `privateKey`. */
    public readonly sshCommands: pulumi.Output<Record<string, string>>;
    public readonly instances: aws.ec2.Instance[];
    /** The group every host wears: SSH from the operator, ICMP between the hosts, all egress. */
    public readonly securityGroup: aws.ec2.SecurityGroup;
    /** Host name → the group only that host wears: the tunnel ports it accepts, from whom. */
    public readonly hostSecurityGroups: Record<string, aws.ec2.SecurityGroup>;

    constructor(name: string, args: AwsHostsArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const { problems, rules } = checkAwsHostsArgs(name, args.hostNames, args.udpRules);
        throwIfInvalid(problems);
        super("fou:aws:AwsHosts", name, {}, opts);
        const settings = args.settings;
        const names = [...args.hostNames];
        const tags = (role: string) => ({ Name: `${name}-${role}`, "fou-tunnel": name });
        const byHost = (values: pulumi.Output<string>[]) =>
            pulumi.all(values).apply((v) => Object.fromEntries(names.map((n, i) => [n, v[i]])) as Record<string, string>);

        const keys = awsKeys(this, name, names, settings.sshUser);
        this.privateKey = pulumi.secret(keys.login.privateKeyOpenssh);
        this.hostKeys = byHost(names.map(keys.hostPublic));
        this.amiId = awsAmi(this, settings);
        const net = awsNetwork(this, name, settings, tags);
        const groups = awsSecurityGroups(this, { name, names, vpcId: net.vpcId, operatorCidr: settings.operatorCidr, tags });
        this.securityGroup = groups.shared;
        this.hostSecurityGroups = groups.perHost;
        this.instances = awsInstances(this, {
            name,
            names,
            settings,
            amiId: this.amiId,
            subnetId: net.subnetId,
            sharedGroup: groups.shared,
            hostGroups: groups.perHost,
            userData: keys.userData,
            network: net.network,
            tags,
        });
        const privateIp = Object.fromEntries(names.map((host, i) => [host, this.instances[i].privateIp]));
        awsTunnelRules(this, name, rules, groups.perHost, privateIp);
        this.hosts = names.map((host, i) =>
            awsTunnelHost(this, {
                name,
                host,
                instance: this.instances[i],
                sshUser: settings.sshUser,
                privateKey: this.privateKey,
                hostKey: keys.hostPublic(host),
                pollAfter: [groups.ssh, ...net.network],
            }),
        );

        this.publicIps = byHost(this.instances.map((i) => i.publicIp));
        this.privateIps = byHost(this.instances.map((i) => i.privateIp));
        this.sshCommands = this.publicIps.apply((ips) =>
            Object.fromEntries(names.map((n) => [n, `ssh -i key.pem ${settings.sshUser}@${ips[n]}`])),
        );
        this.registerOutputs({ amiId: this.amiId, publicIps: this.publicIps, privateIps: this.privateIps, sshCommands: this.sshCommands });
    }
}

/**
 * The aws fleet: an instance per host of the topology, each admitting the UDP of its tunnel
 * ends from its peers, with EC2's source/destination check off when routes reach beyond the
 * GWIPs (EC2 drops forwarded packets otherwise).
 */
export const awsFleet: FleetFactory = (s) => {
    if (!s.aws) {
        throw new Error("fleet: an aws stack without aws settings");
    }
    const routed = s.topology.tunnels.some((t) => t.ends.some((e) => e.routes.length > 0));
    const ec2 = new AwsHosts("aws", {
        settings: { ...s.aws, routesBeyondGwips: s.aws.routesBeyondGwips || routed },
        hostNames: s.topology.hosts.map((h) => h.name),
        udpRules: s.topology.tunnels.flatMap((t) => [
            { to: t.ends[0].host, from: t.ends[1].host, port: t.port },
            { to: t.ends[1].host, from: t.ends[0].host, port: t.port },
        ]),
    });
    return {
        hosts: byName(ec2.hosts),
        outputs: { underlay: ec2.privateIps, publicIps: ec2.publicIps, sshCommands: ec2.sshCommands, vms: [], sshPrivateKey: ec2.privateKey },
    };
};
