/**
 * The EC2 instances of an AwsHosts: the stack's SSH key and each host's SSH host key, the image,
 * the user data that installs both keys, and one instance per host.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import YAML from "yaml";
import { AwsSettings } from "./awsConfig";

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

/** The stack's login key and each host's SSH host key, as {@link awsKeys} makes them. */
export interface AwsKeys {
    /** The stack's SSH key: the login user's only authorized key. */
    readonly login: tls.PrivateKey;
    /** Host name → its SSH host key. */
    readonly hostKeys: Record<string, tls.PrivateKey>;
    /** The host's public key line, `ssh-ed25519 AAAA…`, as connections pin it. */
    readonly hostPublic: (host: string) => pulumi.Output<string>;
    /** The host's user data (secret: it holds the host's private key). */
    readonly userData: (host: string) => pulumi.Output<string>;
}

/**
 * The keys, children of `parent`. Each host key is made here so that it is known (and pinned)
 * before the first login; the instance gets it through its user data.
 */
export function awsKeys(parent: pulumi.Resource, name: string, names: readonly string[], sshUser: string): AwsKeys {
    const login = new tls.PrivateKey(`${name}-ssh-key`, { algorithm: "ED25519" }, { parent });
    const hostKeys = Object.fromEntries(
        names.map((host) => [host, new tls.PrivateKey(`${name}-${host}-host-key`, { algorithm: "ED25519" }, { parent })]),
    );
    const hostPublic = (host: string) => hostKeys[host].publicKeyOpenssh.apply(publicKeyLine);
    const userData = (host: string) =>
        pulumi.secret(
            pulumi
                .all([login.publicKeyOpenssh, hostKeys[host].privateKeyOpenssh, hostKeys[host].publicKeyOpenssh])
                .apply(([authorizedKey, hostPrivateKey, hostPublicKey]) => cloudConfig({ user: sshUser, authorizedKey, hostPrivateKey, hostPublicKey })),
        );
    return { login, hostKeys, hostPublic, userData };
}

/** The image: the settings' fixed AMI, else the most recent x86_64 EBS image the owner and name filter match. */
export function awsAmi(parent: pulumi.Resource, settings: AwsSettings): pulumi.Output<string> {
    if (settings.ami !== undefined) {
        return pulumi.output(settings.ami);
    }
    return aws.ec2.getAmiOutput(
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
        { parent },
    ).imageId;
}

/** What {@link awsInstances} launches the hosts with. */
export interface AwsInstancesArgs {
    readonly name: string;
    readonly names: readonly string[];
    readonly settings: AwsSettings;
    readonly amiId: pulumi.Output<string>;
    readonly subnetId: pulumi.Input<string>;
    /** The group every host wears. */
    readonly sharedGroup: aws.ec2.SecurityGroup;
    /** Host name → the group only that host wears. */
    readonly hostGroups: Record<string, aws.ec2.SecurityGroup>;
    readonly userData: (host: string) => pulumi.Output<string>;
    /** What must outlive the instances (their public addresses need the internet route). */
    readonly network: pulumi.Resource[];
    readonly tags: (role: string) => Record<string, string>;
}

/** One instance per host, in the order of `names`, children of `parent`. */
export function awsInstances(parent: pulumi.Resource, a: AwsInstancesArgs): aws.ec2.Instance[] {
    const { settings } = a;
    return a.names.map(
        (host) =>
            new aws.ec2.Instance(
                `${a.name}-${host}`,
                {
                    ami: a.amiId,
                    instanceType: settings.instanceType,
                    subnetId: a.subnetId,
                    vpcSecurityGroupIds: [a.sharedGroup.id, a.hostGroups[host].id],
                    associatePublicIpAddress: true,
                    // EC2 drops packets whose addresses are not the instance's own; routing
                    // beyond the GWIPs forwards exactly such packets.
                    sourceDestCheck: !settings.routesBeyondGwips,
                    // The host key and the login user: a change (a new key, another user)
                    // replaces the instance, as cloud-init applies user data at first boot only.
                    userData: a.userData(host),
                    userDataReplaceOnChange: true,
                    metadataOptions: { httpTokens: "required" },
                    tags: a.tags(host),
                },
                {
                    parent,
                    dependsOn: a.network,
                    // A looked-up AMI moves with each new release; that must not replace the
                    // hosts (and the tunnel on them) at the next `up`. An explicit awsAmi does.
                    ignoreChanges: settings.ami === undefined ? ["ami"] : [],
                },
            ),
    );
}
