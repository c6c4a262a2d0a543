/**
 * The security groups of an AwsHosts.
 *
 * A rule belongs to a group and applies to every instance wearing it, so a tunnel rule ("k1
 * accepts UDP 5555 from k2") on a group all hosts share would also let k2 reach port 5555 on every
 * other host (k3, …): more than the topology asks for, and a real opening wherever that port is
 * served for another peer (a port reused by two tunnels, a GUE or FOU socket listens to any
 * source). So each host has a group of its own that holds only the rules whose `to` is that host:
 * the UDP it accepts is exactly its tunnel ends, each from its peer's /32. The shared group holds
 * what is meant for all: ICMP from any member (needs a group they all wear), SSH from the operator
 * and egress. Cost: one more group per host (two of the five an interface may wear).
 *
 * Tunnel rules are separate resources because the peers' addresses exist only once the instances,
 * which need their groups at launch, do; inline rules would fight them.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AwsUdpRule, udpRuleName } from "./awsArgs";

/** The groups and the shared group's SSH rule (the polls wait for it). */
export interface AwsSecurityGroups {
    /** The group every host wears: SSH from the operator, ICMP between the hosts, all egress. */
    readonly shared: aws.ec2.SecurityGroup;
    /** Host name → the group only that host wears: the tunnel ports it accepts, from whom. */
    readonly perHost: Record<string, aws.ec2.SecurityGroup>;
    readonly ssh: aws.vpc.SecurityGroupIngressRule;
}

/** What {@link awsSecurityGroups} makes the groups from. */
export interface AwsSecurityGroupsArgs {
    readonly name: string;
    readonly names: readonly string[];
    readonly vpcId: pulumi.Input<string>;
    /** The only network SSH is allowed from. */
    readonly operatorCidr: string;
    readonly tags: (role: string) => Record<string, string>;
}

/** The shared group with its rules, and an empty group per host; all children of `parent`. */
export function awsSecurityGroups(parent: pulumi.Resource, a: AwsSecurityGroupsArgs): AwsSecurityGroups {
    const { name, vpcId } = a;
    const shared = new aws.ec2.SecurityGroup(
        `${name}-sg`,
        { vpcId, description: "fou-tunnel hosts: SSH from the operator, ICMP between the hosts, all egress", tags: a.tags("sg") },
        { parent },
    );
    const perHost = Object.fromEntries(
        a.names.map((host) => [
            host,
            new aws.ec2.SecurityGroup(
                `${name}-${host}-sg`,
                { vpcId, description: `fou-tunnel host ${host}: tunnel UDP from its peers only`, tags: a.tags(`${host}-sg`) },
                { parent },
            ),
        ]),
    );
    const ssh = new aws.vpc.SecurityGroupIngressRule(
        `${name}-ssh`,
        { securityGroupId: shared.id, ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: a.operatorCidr, description: "SSH from the operator" },
        { parent },
    );
    new aws.vpc.SecurityGroupIngressRule(
        `${name}-icmp`,
        { securityGroupId: shared.id, ipProtocol: "icmp", fromPort: -1, toPort: -1, referencedSecurityGroupId: shared.id, description: "ICMP between the hosts" },
        { parent },
    );
    new aws.vpc.SecurityGroupEgressRule(
        `${name}-egress`,
        { securityGroupId: shared.id, ipProtocol: "-1", cidrIpv4: "0.0.0.0/0", description: "all egress" },
        { parent },
    );
    return { shared, perHost, ssh };
}

/**
 * One ingress rule per distinct tunnel rule, on the group of its `to` host: its UDP port from
 * the `from` host's private address only. Children of `parent`.
 */
export function awsTunnelRules(
    parent: pulumi.Resource,
    name: string,
    rules: readonly AwsUdpRule[],
    perHost: Record<string, aws.ec2.SecurityGroup>,
    privateIp: Record<string, pulumi.Output<string>>,
): aws.vpc.SecurityGroupIngressRule[] {
    return rules.map(
        (rule) =>
            new aws.vpc.SecurityGroupIngressRule(
                udpRuleName(name, rule),
                {
                    securityGroupId: perHost[rule.to].id,
                    ipProtocol: "udp",
                    fromPort: rule.port,
                    toPort: rule.port,
                    cidrIpv4: pulumi.interpolate`${privateIp[rule.from]}/32`,
                    description: `tunnel UDP ${rule.port} to ${rule.to} from ${rule.from} (its private address)`,
                },
                { parent },
            ),
    );
}
