import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { TunnelHost } from "../components/host";
import { script, sh } from "../components/shell";
import { checkIfname, checkPort, throwIfInvalid } from "../components/validate";
import { AwsSettings } from "./awsConfig";

export interface AwsHostsArgs {
    readonly settings: AwsSettings;
    /** The FOU UDP port: the only port the hosts accept from each other. */
    readonly port: number;
}

/** The network of `awsVpc: create`; away from the GWIPs (10.10.10.0/24) and the default VPC (172.31.0.0/16). */
export const CREATED_VPC_CIDR = "10.99.0.0/16";
export const CREATED_SUBNET_CIDR = "10.99.1.0/24";

/**
 * User data for both instances. Every tunnel step (modprobe, sysctl, `ip link/addr/route`) runs
 * as the SSH user without sudo, so the steps log in as root; cloud-init's `disable_root: false`
 * puts the stack's key into root's authorized_keys (instead of a "log in as admin" stub).
 */
export const CLOUD_CONFIG = "#cloud-config\ndisable_root: false\n";

/** The user the tunnel steps connect as (see {@link CLOUD_CONFIG}). */
export const TUNNEL_SSH_USER = "root";

/**
 * Prints `device=<name>`: the interface that holds the host's private address, else the default
 * route's device (`ens5` on Nitro instances). Not `ip route get <own address>`: the local table
 * answers that with `dev lo`.
 */
export function pollScript(privateIp: string): string {
    return script(
        sh`dev=$(ip -o -4 addr show to ${`${privateIp}/32`} | awk '{ print $2; exit }')`,
        `[ -n "$dev" ] || dev=$(ip -o -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')`,
        sh`if [ -z "$dev" ]; then echo "fou-tunnel: $(hostname) has no interface with "${privateIp}" and no default route" >&2; exit 1; fi`,
        'echo "device=$dev"',
    );
}

/** The device from the poll's output; fails the deployment on anything but an interface name. */
export function parsePollOutput(stdout: string): string {
    const found = /^device=(.*)$/m.exec(stdout)?.[1];
    throwIfInvalid([checkIfname(`underlay device reported by the host (${JSON.stringify(stdout)})`, found)]);
    return found as string;
}

/**
 * Two EC2 instances in one subnet as the tunnel's hosts: an AMI whose stock kernel ships fou and
 * ipip (Debian 12 by default), an SSH key made for the stack, SSH open to the operator's network
 * only, and between the hosts nothing but ICMP and the FOU port. Each host is ready once a poll
 * over SSH has answered with its underlay device.
 */
export class AwsHosts extends pulumi.ComponentResource {
    public readonly hosts: TunnelHost[];
    /** The stack's SSH private key, OpenSSH format (secret). */
    public readonly privateKey: pulumi.Output<string>;
    public readonly amiId: pulumi.Output<string>;
    /** Host name → public address (SSH). */
    public readonly publicIps: pulumi.Output<Record<string, string>>;
    /** Host name → private address (the tunnel's underlay). */
    public readonly privateIps: pulumi.Output<Record<string, string>>;
    /** Host name → `ssh -i key.pem <user>@<public ip>`, with the key from `privateKey`. */
    public readonly sshCommands: pulumi.Output<Record<string, string>>;
    public readonly instances: aws.ec2.Instance[];
    public readonly securityGroup: aws.ec2.SecurityGroup;

    constructor(name: string, args: AwsHostsArgs, opts: pulumi.ComponentResourceOptions = {}) {
        throwIfInvalid([checkPort(`AwsHosts ${name}: port`, args.port)]);
        super("fou:aws:AwsHosts", name, {}, opts);
        const { settings, port } = args;
        const names = settings.hostNames;
        const tags = (role: string) => ({ Name: `${name}-${role}`, "fou-tunnel": name });

        const key = new tls.PrivateKey(`${name}-ssh-key`, { algorithm: "ED25519" }, { parent: this });
        this.privateKey = pulumi.secret(key.privateKeyOpenssh);
        const keyPair = new aws.ec2.KeyPair(`${name}-key-pair`, { publicKey: key.publicKeyOpenssh, tags: tags("key-pair") }, { parent: this });

        this.amiId =
            settings.ami !== undefined
                ? pulumi.output(settings.ami)
                : aws.ec2.getAmiOutput(
                      {
                          owners: [settings.amiOwner],
                          mostRecent: true,
                          filters: [
                              { name: "name", values: [settings.amiNameFilter] },
                              { name: "architecture", values: ["x86_64"] },
                              { name: "virtualization-type", values: ["hvm"] },
                              { name: "root-device-type", values: ["ebs"] },
                          ],
                      },
                      { parent: this },
                  ).imageId;

        // Not every zone offers every type (us-east-1e has no t3): pick, stably, one that does.
        const zone = aws.ec2
            .getInstanceTypeOfferingsOutput(
                { locationType: "availability-zone", filters: [{ name: "instance-type", values: [settings.instanceType] }] },
                { parent: this },
            )
            .locations.apply((zones) => {
                const sorted = [...zones].sort();
                if (sorted.length === 0) {
                    throw new pulumi.RunError(`AwsHosts ${name}: no availability zone of this region offers ${settings.instanceType}`);
                }
                return sorted[0];
            });

        let vpcId: pulumi.Output<string>;
        let subnetId: pulumi.Output<string>;
        /** What must outlive the instances: their public addresses need the internet route. */
        let network: pulumi.Resource[] = [];
        if (settings.vpc === "default") {
            vpcId = aws.ec2.getVpcOutput({ default: true }, { parent: this }).id;
            subnetId = aws.ec2.getSubnetOutput({ vpcId, availabilityZone: zone, defaultForAz: true }, { parent: this }).id;
        } else {
            const vpc = new aws.ec2.Vpc(
                `${name}-vpc`,
                { cidrBlock: CREATED_VPC_CIDR, enableDnsSupport: true, enableDnsHostnames: true, tags: tags("vpc") },
                { parent: this },
            );
            const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tags("igw") }, { parent: this });
            const subnet = new aws.ec2.Subnet(
                `${name}-subnet`,
                { vpcId: vpc.id, cidrBlock: CREATED_SUBNET_CIDR, availabilityZone: zone, tags: tags("subnet") },
                { parent: this },
            );
            const routes = new aws.ec2.RouteTable(
                `${name}-routes`,
                { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags: tags("routes") },
                { parent: this },
            );
            const association = new aws.ec2.RouteTableAssociation(
                `${name}-routes-subnet`,
                { subnetId: subnet.id, routeTableId: routes.id },
                { parent: this },
            );
            vpcId = vpc.id;
            subnetId = subnet.id;
            network = [igw, association];
        }

        // One group for both hosts: "ICMP from within the group" needs a group they share. The
        // FOU rules are separate resources (one per receiving host, from its peer's /32) because
        // the addresses exist only once the instances, which need the group at launch, do. A rule
        // admitting k2's address on the group k2 also wears only ever matters on k1: a host's
        // packets to itself never pass the group. Inline rules would fight the separate ones.
        const sg = new aws.ec2.SecurityGroup(
            `${name}-sg`,
            { vpcId, description: "fou-tunnel hosts: SSH from the operator, ICMP and FOU between the hosts", tags: tags("sg") },
            { parent: this },
        );
        this.securityGroup = sg;
        const ssh = new aws.vpc.SecurityGroupIngressRule(
            `${name}-ssh`,
            { securityGroupId: sg.id, ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: settings.operatorCidr, description: "SSH from the operator" },
            { parent: this },
        );
        new aws.vpc.SecurityGroupIngressRule(
            `${name}-icmp`,
            { securityGroupId: sg.id, ipProtocol: "icmp", fromPort: -1, toPort: -1, referencedSecurityGroupId: sg.id, description: "ICMP between the hosts" },
            { parent: this },
        );
        new aws.vpc.SecurityGroupEgressRule(
            `${name}-egress`,
            { securityGroupId: sg.id, ipProtocol: "-1", cidrIpv4: "0.0.0.0/0", description: "all egress" },
            { parent: this },
        );

        this.instances = names.map(
            (host) =>
                new aws.ec2.Instance(
                    `${name}-${host}`,
                    {
                        ami: this.amiId,
                        instanceType: settings.instanceType,
                        subnetId,
                        keyName: keyPair.keyName,
                        vpcSecurityGroupIds: [sg.id],
                        associatePublicIpAddress: true,
                        // EC2 drops packets whose addresses are not the instance's own; routing
                        // beyond the GWIPs forwards exactly such packets.
                        sourceDestCheck: !settings.routesBeyondGwips,
                        userData: CLOUD_CONFIG,
                        userDataReplaceOnChange: true,
                        metadataOptions: { httpTokens: "required" },
                        tags: tags(host),
                    },
                    {
                        parent: this,
                        dependsOn: network,
                        // A looked-up AMI moves with each new release; that must not replace the
                        // hosts (and the tunnel on them) at the next `up`. An explicit awsAmi does.
                        ignoreChanges: settings.ami === undefined ? ["ami"] : [],
                    },
                ),
        );

        names.forEach((host, i) => {
            const peer = this.instances[1 - i];
            new aws.vpc.SecurityGroupIngressRule(
                `${name}-${host}-fou`,
                {
                    securityGroupId: sg.id,
                    ipProtocol: "udp",
                    fromPort: port,
                    toPort: port,
                    cidrIpv4: pulumi.interpolate`${peer.privateIp}/32`,
                    description: `FOU to ${host} from ${names[1 - i]}`,
                },
                { parent: this },
            );
        });

        this.hosts = names.map((host, i) => {
            const instance = this.instances[i];
            const connection = {
                host: instance.publicIp,
                user: TUNNEL_SSH_USER,
                privateKey: this.privateKey,
                // Boot and cloud-init take a while; keep dialling until customTimeouts says stop.
                dialErrorLimit: -1,
                perDialTimeout: 15,
            };
            const poll = new command.remote.Command(
                `${name}-${host}-poll`,
                { connection, create: instance.privateIp.apply(pollScript), triggers: [instance.id] },
                { parent: this, dependsOn: [ssh, ...network], customTimeouts: { create: "10m" } },
            );
            return {
                name: host,
                underlayAddress: instance.privateIp,
                device: poll.stdout.apply(parsePollOutput),
                connection,
                readyAfter: [poll],
                identity: instance.id,
            };
        });

        const byName = (values: pulumi.Output<string>[]) =>
            pulumi.all(values).apply((v) => Object.fromEntries(names.map((n, i) => [n, v[i]])) as Record<string, string>);
        this.publicIps = byName(this.instances.map((i) => i.publicIp));
        this.privateIps = byName(this.instances.map((i) => i.privateIp));
        this.sshCommands = this.publicIps.apply((ips) =>
            Object.fromEntries(names.map((n) => [n, `ssh -i key.pem ${settings.sshUser}@${ips[n]}`])),
        );
        this.registerOutputs({ amiId: this.amiId, publicIps: this.publicIps, privateIps: this.privateIps, sshCommands: this.sshCommands });
    }
}
