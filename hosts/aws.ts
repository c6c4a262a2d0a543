import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { TunnelHost } from "../components/host";
import { script, sh } from "../components/shell";
import { SSH_DIALS } from "../lib/sshLogin";
import { checkHostName, checkIfname, checkPort, throwIfInvalid } from "../lib/validate";
import YAML from "yaml";
import { AwsSettings } from "./awsConfig";
import { FleetFactory, byName } from "./fleet";

export interface AwsHostsArgs {
    readonly settings: AwsSettings;
    /** Host names, in topology order (≥ 2, unique, validated by checkHostName). */
    readonly hostNames: string[];
    /** One entry per tunnel end: `to` accepts UDP `port` from `from`'s private address. */
    readonly udpRules: { readonly to: string; readonly from: string; readonly port: number }[];
}

/** One distinct UDP ingress rule; see {@link udpRuleName}. */
export interface AwsUdpRule {
    readonly to: string;
    readonly from: string;
    readonly port: number;
}

/** The rule's resource name: stable as long as its hosts and port are. */
export function udpRuleName(component: string, rule: AwsUdpRule): string {
    return `${component}-${rule.to}-from-${rule.from}-udp-${rule.port}`;
}

/**
 * Every problem with the hosts and rules an {@link AwsHosts} named `name` is given, as messages
 * (none when valid), and the distinct valid rules in first-seen order (a repeated one counts once).
 */
export function checkAwsHostsArgs(name: string, hostNames: unknown, udpRules: unknown): { problems: string[]; rules: AwsUdpRule[] } {
    const at = `AwsHosts ${name}`;
    const problems: (string | undefined)[] = [];
    const names = Array.isArray(hostNames) ? (hostNames as unknown[]) : [];
    if (!Array.isArray(hostNames) || hostNames.length < 2) {
        problems.push(`${at}: hostNames must list at least two hosts (got ${JSON.stringify(hostNames)})`);
    }
    names.forEach((n, i) => problems.push(checkHostName(`${at}: hostNames[${i}]`, n)));
    const seen = new Set<unknown>();
    for (const n of names) {
        if (seen.has(n)) {
            problems.push(`${at}: hostNames lists ${JSON.stringify(n)} more than once; every host needs its own name`);
        }
        seen.add(n);
    }
    const known = names.map(String).join(", ");

    const rules = new Map<string, AwsUdpRule>();
    if (!Array.isArray(udpRules)) {
        problems.push(`${at}: udpRules must be a list of {to, from, port} (got ${JSON.stringify(udpRules)})`);
    } else {
        udpRules.forEach((r: unknown, i) => {
            const rule = (typeof r === "object" && r !== null ? r : {}) as Partial<Record<keyof AwsUdpRule, unknown>>;
            const found: (string | undefined)[] = [];
            for (const end of ["to", "from"] as const) {
                if (!names.includes(rule[end])) {
                    found.push(`${at}: udpRules[${i}].${end} ${JSON.stringify(rule[end])} is not one of the hosts (${known})`);
                }
            }
            if (rule.to !== undefined && rule.to === rule.from) {
                found.push(`${at}: udpRules[${i}] admits ${String(rule.to)} to itself; a rule's to and from must be different hosts`);
            }
            found.push(checkPort(`${at}: udpRules[${i}].port`, rule.port));
            if (found.every((p) => p === undefined)) {
                const ok: AwsUdpRule = { to: rule.to as string, from: rule.from as string, port: rule.port as number };
                rules.set(JSON.stringify([ok.to, ok.from, ok.port]), ok);
            }
            problems.push(...found);
        });
    }
    // Host names may contain '-', so two different rules could spell the same resource name.
    const byName = new Map<string, AwsUdpRule>();
    for (const r of rules.values()) {
        const other = byName.get(udpRuleName(name, r));
        if (other) {
            problems.push(
                `${at}: the rules to ${r.to} from ${r.from} and to ${other.to} from ${other.from} (port ${r.port}) would share the resource name ${udpRuleName(name, r)}; rename a host`,
            );
        }
        byName.set(udpRuleName(name, r), r);
    }
    return { problems: problems.filter((p): p is string => p !== undefined), rules: [...rules.values()] };
}

/** The poll's dials: boot and cloud-init take a few minutes (40 dials of up to 15 s, plus back-off). */
export const AWS_POLL_DIALS = { dialErrorLimit: 40, perDialTimeout: 15 } as const;

/** And the engine's bound on the whole poll. */
export const AWS_POLL_TIMEOUTS: pulumi.CustomTimeouts = { create: "15m", update: "15m", delete: "1m" };

/** The network of `awsVpc: create`; away from the GWIPs (10.10.10.0/24) and the default VPC (172.31.0.0/16). */
export const CREATED_VPC_CIDR = "10.99.0.0/16";
export const CREATED_SUBNET_CIDR = "10.99.1.0/24";

/** What one instance's user data carries; see {@link cloudConfig}. */
export interface CloudConfigArgs {
    /** The login user cloud-init creates (awsSshUser, `admin` on Debian): sudo without a password. */
    readonly user: string;
    /** The stack's SSH public key (`ssh-ed25519 AAAA…`), the user's only authorized key. */
    readonly authorizedKey: string;
    /** The instance's SSH host key, made in the stack: OpenSSH private key and its public line. */
    readonly hostPrivateKey: string;
    readonly hostPublicKey: string;
}

/** `ssh-ed25519 AAAA…`: the type and key fields of a public key line (the tls provider adds a newline). */
export function publicKeyLine(key: string): string {
    const [type, body] = key.trim().split(/\s+/);
    return `${type} ${body}`;
}

/**
 * The instance's user data (cloud-init `#cloud-config`), the same shape for every host:
 * - `ssh_keys` hands sshd the host key made in the stack, and `ssh_deletekeys` (with no other
 *   type in `ssh_genkeytypes`) leaves it the only one: the key is known (and pinned in every connection)
 *   before the first SSH login, instead of being whatever the instance generated at first boot;
 * - `users` makes the login user (admin, Debian's AMI user) with the stack's key as its only
 *   authorized key, no password, and sudo without one: the tunnel steps run through `sudo -n`
 *   (`TunnelHost.sudo`); `disable_root` (cloud-init's default, said here) and no EC2 key pair
 *   leave root without any key, so root cannot log in;
 * - `packages` installs nftables (the Firewall component's `nft`), a no-op where the image has it.
 * The text holds the host's private key: it is passed as a secret.
 */
export function cloudConfig(a: CloudConfigArgs): string {
    const doc = {
        ssh_deletekeys: true,
        // Ignored next to ssh_keys (cloud-init generates no key then); said for any other reader.
        ssh_genkeytypes: ["ed25519"],
        ssh_keys: { ed25519_private: a.hostPrivateKey.trim() + "\n", ed25519_public: publicKeyLine(a.hostPublicKey) },
        disable_root: true,
        users: [
            {
                name: a.user,
                gecos: "fou-tunnel login",
                shell: "/bin/bash",
                lock_passwd: true,
                sudo: "ALL=(ALL) NOPASSWD:ALL",
                ssh_authorized_keys: [publicKeyLine(a.authorizedKey)],
            },
        ],
        packages: ["nftables"],
    };
    return `#cloud-config\n${YAML.stringify(doc, { lineWidth: 0 })}`;
}

/**
 * Waits until cloud-init has finished with the user data (the packages it installs come last, after
 * sshd is up) and fails, naming the status, if it did not finish cleanly. Then prints
 * `device=<name>`: the interface that holds the host's private address, else the default route's
 * device (`ens5` on Nitro instances). Not `ip route get <own address>`: the local table answers
 * that with `dev lo`. Runs as the login user, without sudo.
 */
export function pollScript(privateIp: string): string {
    return script(
        "if command -v cloud-init >/dev/null 2>&1; then",
        "  ci=$(cloud-init status --wait 2>&1 | tr -d . | tail -n 1) || true",
        '  case $ci in',
        '  *"status: done"*) ;;',
        '  *) echo "fou-tunnel: $(hostname): cloud-init did not finish the user data cleanly (${ci:-no status}): see /var/log/cloud-init.log and /var/log/cloud-init-output.log" >&2; exit 1 ;;',
        "  esac",
        "fi",
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
 * One EC2 instance per host of the topology, all in one subnet: an AMI whose stock kernel ships
 * fou and ipip (Debian 12 by default), an SSH key made for the stack, SSH open to the operator's
 * network only, and between the hosts nothing but ICMP and, per tunnel end, its UDP port from its
 * peer's private address. Each host is ready once a poll over SSH has answered with its underlay
 * device.
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

        const key = new tls.PrivateKey(`${name}-ssh-key`, { algorithm: "ED25519" }, { parent: this });
        this.privateKey = pulumi.secret(key.privateKeyOpenssh);
        // Each instance's host key, made here so that it is known (and pinned) before the first
        // login; the instance gets it through its user data.
        const hostKeys = Object.fromEntries(
            names.map((host) => [host, new tls.PrivateKey(`${name}-${host}-host-key`, { algorithm: "ED25519" }, { parent: this })]),
        );
        const hostPublic = (host: string) => hostKeys[host].publicKeyOpenssh.apply(publicKeyLine);
        this.hostKeys = pulumi
            .all(names.map(hostPublic))
            .apply((keys) => Object.fromEntries(names.map((n, i) => [n, keys[i]])) as Record<string, string>);
        const userData = (host: string) =>
            pulumi.secret(
                pulumi
                    .all([key.publicKeyOpenssh, hostKeys[host].privateKeyOpenssh, hostKeys[host].publicKeyOpenssh])
                    .apply(([authorizedKey, hostPrivateKey, hostPublicKey]) =>
                        cloudConfig({ user: settings.sshUser, authorizedKey, hostPrivateKey, hostPublicKey }),
                    ),
            );

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

        // Security groups. A rule belongs to a group and applies to every instance wearing it, so
        // a tunnel rule ("k1 accepts UDP 5555 from k2") on a group all hosts share would also let
        // k2 reach port 5555 on every other host (k3, …): more than the topology asks for, and a
        // real opening wherever that port is served for another peer (a port reused by two
        // tunnels, a GUE or FOU socket listens to any source). So each host has a group of its
        // own that holds only the rules whose `to` is that host: the UDP it accepts is exactly
        // its tunnel ends, each from its peer's /32. The shared group stays for what is meant
        // for all: ICMP from any member (needs a group they all wear), SSH from the operator and
        // egress. Cost: one more group per host (two of the five an interface may wear).
        // Tunnel rules are separate resources because the peers' addresses exist only once the
        // instances, which need their groups at launch, do; inline rules would fight them.
        const sg = new aws.ec2.SecurityGroup(
            `${name}-sg`,
            { vpcId, description: "fou-tunnel hosts: SSH from the operator, ICMP between the hosts, all egress", tags: tags("sg") },
            { parent: this },
        );
        this.securityGroup = sg;
        this.hostSecurityGroups = Object.fromEntries(
            names.map((host) => [
                host,
                new aws.ec2.SecurityGroup(
                    `${name}-${host}-sg`,
                    { vpcId, description: `fou-tunnel host ${host}: tunnel UDP from its peers only`, tags: tags(`${host}-sg`) },
                    { parent: this },
                ),
            ]),
        );
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
                        vpcSecurityGroupIds: [sg.id, this.hostSecurityGroups[host].id],
                        associatePublicIpAddress: true,
                        // EC2 drops packets whose addresses are not the instance's own; routing
                        // beyond the GWIPs forwards exactly such packets.
                        sourceDestCheck: !settings.routesBeyondGwips,
                        // The host key and the login user: a change (a new key, another user)
                        // replaces the instance, as cloud-init applies user data at first boot only.
                        userData: userData(host),
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

        const privateIp = Object.fromEntries(names.map((host, i) => [host, this.instances[i].privateIp]));
        for (const rule of rules) {
            new aws.vpc.SecurityGroupIngressRule(
                udpRuleName(name, rule),
                {
                    securityGroupId: this.hostSecurityGroups[rule.to].id,
                    ipProtocol: "udp",
                    fromPort: rule.port,
                    toPort: rule.port,
                    cidrIpv4: pulumi.interpolate`${privateIp[rule.from]}/32`,
                    description: `tunnel UDP ${rule.port} to ${rule.to} from ${rule.from} (its private address)`,
                },
                { parent: this },
            );
        }

        this.hosts = names.map((host, i) => {
            const instance = this.instances[i];
            // The user cloud-init made, the stack's key, and the host key the user data installed:
            // a host presenting any other key is refused before anything is sent to it.
            const login = pulumi.all([instance.publicIp, this.privateKey, hostPublic(host)]).apply(([ip, privateKey, hostKey]) => ({
                host: ip,
                user: settings.sshUser,
                privateKey,
                hostKey,
            }));
            // The poll has waited for the host: the tunnel steps need the login model's few dials.
            const connection = pulumi.secret(login.apply((c) => ({ ...c, ...SSH_DIALS })));
            // The poll waits out boot and cloud-init; after it, the host answers at once.
            const poll = new command.remote.Command(
                `${name}-${host}-poll`,
                {
                    connection: pulumi.secret(login.apply((c) => ({ ...c, ...AWS_POLL_DIALS }))),
                    create: instance.privateIp.apply(pollScript),
                    triggers: [instance.id],
                },
                { parent: this, dependsOn: [ssh, ...network], customTimeouts: AWS_POLL_TIMEOUTS },
            );
            return {
                name: host,
                underlayAddress: instance.privateIp,
                device: poll.stdout.apply(parsePollOutput),
                connection,
                readyAfter: [poll],
                identity: instance.id,
                // The login user is not root: every step runs through `sudo -n`.
                sudo: settings.sshUser !== "root",
                // Terminating the instance takes its tunnel with it: no undo over SSH (which a
                // dead or stopped instance could not answer anyway).
                deletedWith: instance,
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
