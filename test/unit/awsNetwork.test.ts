/**
 * The aws hosts' network: what each AwsHosts declares in the default VPC and in a created one,
 * the subnet it picks, and the security groups and their rules.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { recorded } from "./mocks";
import { OPERATOR, calls, children, declareAwsHosts, res, rules, viaDefault } from "./awsFixtures";

declareAwsHosts();

test("default VPC: exactly the key, key pair, shared group and its rules, per host an instance, a group and a poll, one rule per tunnel end; all children of the component", () => {
    assert.equal(res("aws").type, "fou:aws:AwsHosts");
    assert.equal(res("aws").parent, "aws-root");
    assert.deepEqual(children("aws"), [
        "aws:ec2/instance:Instance aws-k1",
        "aws:ec2/instance:Instance aws-k2",
        "aws:ec2/instance:Instance aws-k3",
        "aws:ec2/securityGroup:SecurityGroup aws-k1-sg",
        "aws:ec2/securityGroup:SecurityGroup aws-k2-sg",
        "aws:ec2/securityGroup:SecurityGroup aws-k3-sg",
        "aws:ec2/securityGroup:SecurityGroup aws-sg",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule aws-egress",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule aws-icmp",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule aws-k1-from-k2-udp-5555",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule aws-k1-from-k3-udp-5556",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule aws-k2-from-k1-udp-5555",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule aws-k3-from-k1-udp-5556",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule aws-ssh",
        "command:remote:Command aws-k1-poll",
        "command:remote:Command aws-k2-poll",
        "command:remote:Command aws-k3-poll",
        "tls:index/privateKey:PrivateKey aws-k1-host-key",
        "tls:index/privateKey:PrivateKey aws-k2-host-key",
        "tls:index/privateKey:PrivateKey aws-k3-host-key",
        "tls:index/privateKey:PrivateKey aws-ssh-key",
    ]);
});

test("created VPC: a VPC 10.99.0.0/16, a subnet, an internet gateway and a default route, on top of the hosts", () => {
    assert.deepEqual(children("awsc"), [
        "aws:ec2/instance:Instance awsc-a1",
        "aws:ec2/instance:Instance awsc-a2",
        "aws:ec2/internetGateway:InternetGateway awsc-igw",
        "aws:ec2/routeTable:RouteTable awsc-routes",
        "aws:ec2/routeTableAssociation:RouteTableAssociation awsc-routes-subnet",
        "aws:ec2/securityGroup:SecurityGroup awsc-a1-sg",
        "aws:ec2/securityGroup:SecurityGroup awsc-a2-sg",
        "aws:ec2/securityGroup:SecurityGroup awsc-sg",
        "aws:ec2/subnet:Subnet awsc-subnet",
        "aws:ec2/vpc:Vpc awsc-vpc",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule awsc-egress",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule awsc-a1-from-a2-udp-6000",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule awsc-a2-from-a1-udp-6000",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule awsc-icmp",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule awsc-ssh",
        "command:remote:Command awsc-a1-poll",
        "command:remote:Command awsc-a2-poll",
        "tls:index/privateKey:PrivateKey awsc-a1-host-key",
        "tls:index/privateKey:PrivateKey awsc-a2-host-key",
        "tls:index/privateKey:PrivateKey awsc-ssh-key",
    ]);
    assert.equal(res("awsc-vpc").inputs.cidrBlock, "10.99.0.0/16");
    assert.equal(res("awsc-vpc").inputs.enableDnsHostnames, true);
    assert.deepEqual(
        [res("awsc-subnet").inputs.vpcId, res("awsc-subnet").inputs.cidrBlock, res("awsc-subnet").inputs.availabilityZone],
        ["awsc-vpc-id", "10.99.1.0/24", "us-east-1a"],
    );
    assert.equal(res("awsc-igw").inputs.vpcId, "awsc-vpc-id");
    assert.equal(res("awsc-routes").inputs.vpcId, "awsc-vpc-id");
    assert.deepEqual(
        res("awsc-routes").inputs.routes.map((r: any) => [r.cidrBlock, r.gatewayId]),
        [["0.0.0.0/0", "awsc-igw-id"]],
    );
    assert.deepEqual(
        [res("awsc-routes-subnet").inputs.subnetId, res("awsc-routes-subnet").inputs.routeTableId],
        ["awsc-subnet-id", "awsc-routes-id"],
    );
    assert.equal(res("awsc-sg").inputs.vpcId, "awsc-vpc-id");
    assert.equal(res("awsc-a1-sg").inputs.vpcId, "awsc-vpc-id");
    assert.equal(res("awsc-a2-sg").inputs.vpcId, "awsc-vpc-id");
});

test("default VPC: the default VPC's default subnet in the first zone that offers the type, and no VPC resources", () => {
    const vpcCalls = calls.filter((c) => c.token === "aws:ec2/getVpc:getVpc");
    assert.equal(vpcCalls.length, 1, "only the default-VPC hosts look up a VPC");
    assert.equal(vpcCalls[0].inputs.default, true);
    const subnetCalls = calls.filter((c) => c.token === "aws:ec2/getSubnet:getSubnet");
    assert.equal(subnetCalls.length, 1);
    assert.deepEqual(
        [subnetCalls[0].inputs.vpcId, subnetCalls[0].inputs.availabilityZone, subnetCalls[0].inputs.defaultForAz],
        ["vpc-default", "us-east-1a", true],
    );
    const offerings = calls.filter((c) => c.token === "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings");
    assert.deepEqual(
        offerings.map((c) => [c.inputs.locationType, c.inputs.filters[0].name, c.inputs.filters[0].values]),
        [
            ["availability-zone", "instance-type", ["t3.micro"]],
            ["availability-zone", "instance-type", ["t3.small"]],
        ],
    );
    assert.equal(res("aws-sg").inputs.vpcId, "vpc-default");
    for (const host of ["k1", "k2", "k3"]) {
        assert.equal(res(`aws-${host}-sg`).inputs.vpcId, "vpc-default", host);
    }
    assert.ok(!recorded.some((r) => r.name.startsWith("aws-") && /ec2\/(vpc|subnet|internetGateway|routeTable)/.test(r.type)));
});

test("security groups: SSH only from the operator, ICMP within the shared group, all egress; per host only its tunnel ports, each from its peer's /32", () => {
    const sorted = <T>(xs: T[]) => xs.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const expected = (c: string, operator: string, udp: [string, number, string][]) =>
        sorted([
            { dir: "egress", group: `${c}-sg-id`, proto: "-1", ports: [undefined, undefined], from: "0.0.0.0/0" },
            { dir: "ingress", group: `${c}-sg-id`, proto: "icmp", ports: [-1, -1], from: `sg:${c}-sg-id` },
            { dir: "ingress", group: `${c}-sg-id`, proto: "tcp", ports: [22, 22], from: operator },
            ...udp.map(([to, port, peer]) => ({ dir: "ingress", group: `${c}-${to}-sg-id`, proto: "udp", ports: [port, port], from: `${peer}/32` })),
        ]);
    // k1 accepts 5555 from k2 and 5556 from k3; k2 only 5555 from k1; k3 only 5556 from k1. No
    // rule lets k2 and k3 reach each other over UDP, nor any host a port of another tunnel.
    assert.deepEqual(
        rules("aws"),
        expected("aws", OPERATOR, [
            ["k1", 5555, "172.31.5.12"],
            ["k1", 5556, "172.31.5.13"],
            ["k2", 5555, "172.31.5.11"],
            ["k3", 5556, "172.31.5.11"],
        ]),
    );
    assert.deepEqual(
        rules("awsc"),
        expected("awsc", "192.0.2.7/32", [
            ["a1", 6000, "10.99.1.22"],
            ["a2", 6000, "10.99.1.21"],
        ]),
    );
    for (const [rule, group, peer, port] of [
        ["aws-k1-from-k2-udp-5555", "aws-k1-sg-id", "172.31.5.12", 5555],
        ["aws-k1-from-k3-udp-5556", "aws-k1-sg-id", "172.31.5.13", 5556],
        ["aws-k2-from-k1-udp-5555", "aws-k2-sg-id", "172.31.5.11", 5555],
        ["aws-k3-from-k1-udp-5556", "aws-k3-sg-id", "172.31.5.11", 5556],
    ] as const) {
        const i = res(rule).inputs;
        assert.deepEqual([i.securityGroupId, i.cidrIpv4, i.fromPort, i.toPort, i.ipProtocol], [group, `${peer}/32`, port, port, "udp"], rule);
    }
    assert.equal(res("aws-k3-from-k1-udp-5556").inputs.description, "tunnel UDP 5556 to k3 from k1 (its private address)");
    // Rule descriptions only allow a-z A-Z 0-9 space and ._-:/()#,@[]+=&;{}!$*.
    for (const r of recorded.filter((x) => x.type.startsWith("aws:vpc/securityGroup") || x.type === "aws:ec2/securityGroup:SecurityGroup")) {
        assert.match(r.inputs.description, /^[A-Za-z0-9 ._:/()#,@[\]+=&;{}!$*-]{1,255}$/, r.name);
    }
    // The shared group holds nothing over UDP; no group has inline rules next to the rule resources.
    assert.ok(!rules("aws").some((r) => r.group === "aws-sg-id" && r.proto === "udp"));
    for (const g of ["aws-sg", "aws-k1-sg", "aws-k2-sg", "aws-k3-sg", "awsc-sg", "awsc-a1-sg", "awsc-a2-sg"]) {
        assert.equal(res(g).inputs.ingress, undefined, g);
        assert.equal(res(g).inputs.egress, undefined, g);
    }
    assert.deepEqual(Object.keys(viaDefault.hostSecurityGroups), ["k1", "k2", "k3"]);
    assert.equal((viaDefault.securityGroup as any).__name, "aws-sg");
});
