import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { HOST_SHELLS, runIn, runInAll } from "./hostShells";
import { decodeStep, recorded, settle, valueOf } from "./mocks";
import { FouTunnel } from "../../components/fouTunnel";
import { HostPrep } from "../../components/hostPrep";
import { FouInputError } from "../../lib/validate";
import { AWS_POLL_DIALS, AWS_POLL_TIMEOUTS, AwsHosts, AwsHostsArgs, cloudConfig, parsePollOutput, pollScript, publicKeyLine } from "../../hosts/aws";
import { SSH_DIALS } from "../../lib/sshLogin";
import { AwsSettings, parseAwsSettings } from "../../hosts/awsConfig";

// mocks.ts answers every call with its inputs; EC2 lookups need real-looking answers, so this file
// installs its own mocks. They record into the same `recorded` list and throw on an unknown call.
const calls: { token: string; inputs: Record<string, any> }[] = [];
const parents = new Map<string, string | undefined>();
/** Each resource's options as declared (mocks do not see them). */
const options = new Map<string, pulumi.CustomResourceOptions>();
const AMI = "ami-0123456789abcdef0";
const OVERRIDE_AMI = "ami-0fedcba9876543210";
const ADDRESSES: Record<string, { privateIp: string; publicIp: string }> = {
    "aws-k1": { privateIp: "172.31.5.11", publicIp: "198.51.100.11" },
    "aws-k2": { privateIp: "172.31.5.12", publicIp: "198.51.100.12" },
    "aws-k3": { privateIp: "172.31.5.13", publicIp: "198.51.100.13" },
    "awsc-a1": { privateIp: "10.99.1.21", publicIp: "198.51.100.21" },
    "awsc-a2": { privateIp: "10.99.1.22", publicIp: "198.51.100.22" },
};
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nMOCK\n-----END OPENSSH PRIVATE KEY-----\n";
const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAmock\n";
/** Each host key of the mocks is its own: `aws-k1-host-key` → `…AAAAhostawsk1hostkey`. */
const hostPrivate = (resource: string) => `-----BEGIN OPENSSH PRIVATE KEY-----\nHOST ${resource}\n-----END OPENSSH PRIVATE KEY-----\n`;
const hostPublic = (resource: string) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhost${resource.replace(/[^a-z0-9]/g, "")}\n`;

const mocks: pulumi.runtime.Mocks = {
    newResource(args) {
        recorded.push({ type: args.type, name: args.name, inputs: decodeStep(args.inputs), parent: parents.get(args.name), dependsOn: [] });
        const state: Record<string, any> = { ...args.inputs };
        switch (args.type) {
            case "tls:index/privateKey:PrivateKey":
                Object.assign(
                    state,
                    args.name.endsWith("-host-key")
                        ? { privateKeyOpenssh: hostPrivate(args.name), publicKeyOpenssh: hostPublic(args.name) }
                        : { privateKeyOpenssh: PRIVATE_KEY, publicKeyOpenssh: PUBLIC_KEY },
                );
                break;
            case "aws:ec2/keyPair:KeyPair":
                state.keyName = `${args.name}-name`;
                break;
            case "aws:ec2/instance:Instance":
                Object.assign(state, ADDRESSES[args.name]);
                break;
            case "command:remote:Command":
                state.stdout = String(args.inputs.create).includes("ip -o -4 addr show") ? "device=ens5" : "mtu=1472\ninstance=x";
                state.stderr = "";
                break;
        }
        return { id: `${args.name}-id`, state };
    },
    call(args) {
        calls.push({ token: args.token, inputs: args.inputs });
        switch (args.token) {
            case "aws:ec2/getAmi:getAmi":
                return { ...args.inputs, id: AMI, imageId: AMI, architecture: "x86_64" };
            case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
                return { id: "x", instanceTypes: ["t3.micro"], locations: ["us-east-1c", "us-east-1a", "us-east-1b"], locationTypes: [] };
            case "aws:ec2/getVpc:getVpc":
                return { id: "vpc-default", cidrBlock: "172.31.0.0/16" };
            case "aws:ec2/getSubnet:getSubnet":
                return { id: `subnet-default-${args.inputs.availabilityZone}`, vpcId: args.inputs.vpcId };
        }
        throw new Error(`unexpected call ${args.token}`);
    },
};

// Mocks do not see resource options; a transformation on this file's root records each parent.
let awsRoot: pulumi.ComponentResource;
function makeRoot(): pulumi.ComponentResource {
    return new pulumi.ComponentResource("test:index:AwsRoot", "aws-root", {}, {
        transformations: [
            (t) => {
                parents.set(t.name, (t.opts.parent as any)?.__name);
                options.set(t.name, t.opts as pulumi.CustomResourceOptions);
                return undefined;
            },
        ],
    });
}

const OPERATOR = "203.0.113.0/24";
const defaults: AwsSettings = parseAwsSettings((k) => ({ awsOperatorCidr: OPERATOR })[k as "awsOperatorCidr"]);
const created: AwsSettings = parseAwsSettings(
    (k) =>
        ({
            awsOperatorCidr: "192.0.2.7",
            awsVpc: "create",
            awsAmi: OVERRIDE_AMI,
            awsInstanceType: "t3.small",
            awsRoutesBeyondGwips: "true",
        })[k],
);

/** Both ends' rules of each tunnel [a, b, port]: a accepts the port from b, and b from a. */
function tunnelRules(tunnels: [string, string, number][]): AwsHostsArgs["udpRules"] {
    return tunnels.flatMap(([a, b, port]) => [
        { to: a, from: b, port },
        { to: b, from: a, port },
    ]);
}

/** Three hosts, two tunnels on their own ports: k1-k2 on 5555, k1-k3 on 5556. */
const THREE = { hostNames: ["k1", "k2", "k3"], udpRules: tunnelRules([["k1", "k2", 5555], ["k1", "k3", 5556]]) };

let viaDefault: AwsHosts;
let viaCreated: AwsHosts;
let tunnel: FouTunnel;
before(async () => {
    // mocks.ts registered its own root with its mocks; let that finish before replacing them.
    await settle();
    pulumi.runtime.setMocks(mocks, "fou-tunnel", "unit", false);
    awsRoot = makeRoot();
    viaDefault = new AwsHosts("aws", { settings: defaults, ...THREE }, { parent: awsRoot });
    // The same tunnel end listed twice (two tunnels' worth of rules handing in the same one) is one rule.
    const oneTunnel = tunnelRules([["a1", "a2", 6000]]);
    viaCreated = new AwsHosts("awsc", { settings: created, hostNames: ["a1", "a2"], udpRules: [...oneTunnel, oneTunnel[0]] }, { parent: awsRoot });
    // The same components as on local VMs, on the EC2 hosts.
    const hosts = viaDefault.hosts;
    const preps = hosts.map((host) => new HostPrep(`${host.name}-prep`, { host }, { parent: awsRoot }));
    tunnel = new FouTunnel(
        "fou",
        {
            a: { host: hosts[0], gwip: "10.10.10.1", prepared: preps[0].ready },
            b: { host: hosts[1], gwip: "10.10.10.2", prepared: preps[1].ready },
            port: 5555,
            check: false,
        },
        { parent: awsRoot },
    );
    for (const h of [...viaDefault.hosts, ...viaCreated.hosts]) {
        await valueOf(h.device);
    }
    await valueOf(viaDefault.sshCommands);
    await valueOf(viaCreated.sshCommands);
    await valueOf(tunnel.ends[1].mtu);
    await settle();
});

function res(name: string) {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no resource named ${name}; have ${recorded.map((x) => x.name).join(", ")}`);
    return r;
}

/** The inputs with Pulumi's secret wrapper removed. */
function plain(v: any): any {
    if (v && typeof v === "object" && "4dabf18193072939515e22adb298388d" in v) {
        return plain(v.value);
    }
    if (Array.isArray(v)) {
        return v.map(plain);
    }
    if (v && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
    }
    return v;
}

function children(component: string) {
    return recorded
        .filter((r) => r.parent === component)
        .map((r) => `${r.type} ${r.name}`)
        .sort();
}

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

test("the AMI is the newest x86_64 Debian 12 release image from Debian's account, unless awsAmi overrides it", () => {
    const amiCalls = calls.filter((c) => c.token === "aws:ec2/getAmi:getAmi");
    assert.equal(amiCalls.length, 1, "the override looks nothing up");
    const q = amiCalls[0].inputs;
    assert.deepEqual(q.owners, ["136693071363"]);
    assert.equal(q.mostRecent, true);
    assert.deepEqual(
        Object.fromEntries(q.filters.map((f: any) => [f.name, f.values])),
        { name: ["debian-12-amd64-20*"], architecture: ["x86_64"], "virtualization-type": ["hvm"], "root-device-type": ["ebs"] },
    );
    assert.equal(res("aws-k1").inputs.ami, AMI);
    assert.equal(res("aws-k2").inputs.ami, AMI);
    assert.equal(res("aws-k3").inputs.ami, AMI);
    assert.equal(res("awsc-a1").inputs.ami, OVERRIDE_AMI);
    assert.equal(res("awsc-a2").inputs.ami, OVERRIDE_AMI);
});

test("the stack's SSH key and every host's host key are ED25519 tls keys; no EC2 key pair (the login key comes with the user data)", async () => {
    for (const k of ["aws-ssh-key", "aws-k1-host-key", "aws-k2-host-key", "aws-k3-host-key", "awsc-a1-host-key", "awsc-a2-host-key"]) {
        assert.equal(res(k).inputs.algorithm, "ED25519", k);
    }
    assert.ok(!recorded.some((r) => r.type === "aws:ec2/keyPair:KeyPair"));
    assert.deepEqual(await valueOf(viaDefault.hostKeys), {
        k1: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey",
        k2: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey",
        k3: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk3hostkey",
    });
});

/** The user data the aws stack renders for k1 of the mocks, to the byte. */
const K1_USER_DATA = `#cloud-config
ssh_deletekeys: true
ssh_genkeytypes:
  - ed25519
ssh_keys:
  ed25519_private: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    HOST aws-k1-host-key
    -----END OPENSSH PRIVATE KEY-----
  ed25519_public: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey
disable_root: true
users:
  - name: admin
    gecos: fou-tunnel login
    shell: /bin/bash
    lock_passwd: true
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAmock
packages:
  - nftables
`;

test("user data: the host's own key as the only host key, the admin user with the stack's key and sudo, nftables; secret; a change replaces the instance", async () => {
    assert.equal(plain(res("aws-k1").inputs.userData), K1_USER_DATA);
    for (const name of ["aws-k1", "aws-k2", "aws-k3", "awsc-a1", "awsc-a2"]) {
        const i = res(name).inputs;
        assert.ok(Object.keys(i.userData).includes("4dabf18193072939515e22adb298388d"), `${name}: the user data holds a private key and must be secret`);
        assert.equal(
            plain(i.userData),
            cloudConfig({ user: "admin", authorizedKey: PUBLIC_KEY, hostPrivateKey: hostPrivate(`${name}-host-key`), hostPublicKey: hostPublic(`${name}-host-key`) }),
            name,
        );
        assert.equal(i.userDataReplaceOnChange, true, name);
        assert.equal(i.keyName, undefined, name);
    }
    // What cloud-init reads (YAML 1.1 there; the document uses nothing where 1.1 and 1.2 differ).
    const doc = YAML.parse(plain(res("aws-k2").inputs.userData));
    assert.deepEqual(doc.ssh_keys, { ed25519_private: hostPrivate("aws-k2-host-key"), ed25519_public: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey" });
    assert.deepEqual([doc.ssh_deletekeys, doc.ssh_genkeytypes, doc.disable_root], [true, ["ed25519"], true]);
    assert.deepEqual(doc.users, [
        { name: "admin", gecos: "fou-tunnel login", shell: "/bin/bash", lock_passwd: true, sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAmock"] },
    ]);
    assert.deepEqual(doc.packages, ["nftables"]);
    assert.deepEqual(Object.keys(doc).sort(), ["disable_root", "packages", "ssh_deletekeys", "ssh_genkeytypes", "ssh_keys", "users"]);
    // Another user, from awsSshUser.
    assert.match(cloudConfig({ user: "ubuntu", authorizedKey: "ssh-ed25519 AAAA c", hostPrivateKey: "k", hostPublicKey: "ssh-ed25519 BBBB d\n" }), /\n {2}ed25519_public: ssh-ed25519 BBBB\n[^]*\n {2}- name: ubuntu\n/);
    assert.equal(publicKeyLine("ssh-ed25519 AAAA comment\n"), "ssh-ed25519 AAAA");
});

test("instances: AMI, type, one subnet, the shared group and its own, a public address, IMDSv2, source/dest check per routing", () => {
    assert.equal(recorded.filter((r) => r.type === "aws:ec2/instance:Instance" && r.parent === "aws").length, 3, "one instance per host");
    assert.equal(recorded.filter((r) => r.type === "aws:ec2/instance:Instance" && r.parent === "awsc").length, 2, "one instance per host");
    for (const [name, type, subnet, check] of [
        ["aws-k1", "t3.micro", "subnet-default-us-east-1a", true],
        ["aws-k2", "t3.micro", "subnet-default-us-east-1a", true],
        ["aws-k3", "t3.micro", "subnet-default-us-east-1a", true],
        ["awsc-a1", "t3.small", "awsc-subnet-id", false],
        ["awsc-a2", "t3.small", "awsc-subnet-id", false],
    ] as const) {
        const component = name.split("-")[0];
        const i = res(name).inputs;
        assert.equal(i.instanceType, type, name);
        assert.equal(i.subnetId, subnet, name);
        assert.deepEqual(i.vpcSecurityGroupIds, [`${component}-sg-id`, `${name}-sg-id`], name);
        assert.equal(i.sourceDestCheck, check, name);
        assert.equal(i.associatePublicIpAddress, true, name);
        assert.equal(i.metadataOptions.httpTokens, "required", name);
    }
});

function rules(component: string) {
    return recorded
        .filter((r) => r.parent === component && r.type.startsWith("aws:vpc/securityGroup"))
        .map((r) => ({
            dir: r.type.includes("Egress") ? "egress" : "ingress",
            group: r.inputs.securityGroupId,
            proto: r.inputs.ipProtocol,
            ports: [r.inputs.fromPort, r.inputs.toPort],
            from: r.inputs.cidrIpv4 ?? `sg:${r.inputs.referencedSecurityGroupId}`,
        }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

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

test("TunnelHosts: one per host in topology order, private IP as underlay, public IP in the connection, device from the poll, ready after the poll", async () => {
    const hosts = viaDefault.hosts;
    assert.deepEqual(
        hosts.map((h) => h.name),
        ["k1", "k2", "k3"],
    );
    assert.deepEqual(await Promise.all(hosts.map((h) => valueOf(h.underlayAddress))), ["172.31.5.11", "172.31.5.12", "172.31.5.13"]);
    assert.deepEqual(await Promise.all(hosts.map((h) => valueOf(h.device))), ["ens5", "ens5", "ens5"]);
    const conns = await Promise.all(hosts.map((h) => valueOf(h.connection)));
    assert.deepEqual(
        conns.map((c) => [c.host, c.user, c.hostKey, c.dialErrorLimit, c.perDialTimeout]),
        [
            ["198.51.100.11", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey", 5, 10],
            ["198.51.100.12", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey", 5, 10],
            ["198.51.100.13", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk3hostkey", 5, 10],
        ],
    );
    assert.equal(await valueOf(conns[0].privateKey as pulumi.Input<string>), PRIVATE_KEY);
    for (const h of [...hosts, ...viaCreated.hosts]) {
        assert.equal(await pulumi.isSecret(pulumi.output(h.connection)), true, `${h.name}: the connection is secret`);
        assert.equal(h.sudo, true, `${h.name}: the steps run through sudo`);
    }
    assert.deepEqual(
        hosts.map((h) => (h.readyAfter ?? []).map((r) => (r as any).__name)),
        [["aws-k1-poll"], ["aws-k2-poll"], ["aws-k3-poll"]],
    );
    assert.deepEqual(await Promise.all(hosts.map((h) => valueOf(h.identity as pulumi.Input<string>))), ["aws-k1-id", "aws-k2-id", "aws-k3-id"]);
    assert.deepEqual(
        viaCreated.hosts.map((h) => h.name),
        ["a1", "a2"],
    );
});

test("each poll asks its own host for the device holding its private address, quoted", () => {
    const poll = res("aws-k2-poll").inputs;
    assert.equal(poll.create, pollScript("172.31.5.12"));
    assert.match(poll.create, /ip -o -4 addr show to '172\.31\.5\.12\/32'/);
    assert.deepEqual(poll.triggers, ["aws-k2-id"]);
    assert.deepEqual(
        [plain(poll.connection).host, plain(poll.connection).user, plain(poll.connection).hostKey],
        ["198.51.100.12", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey"],
    );
    assert.ok(Object.keys(poll.connection).includes("4dabf18193072939515e22adb298388d"), "the poll's connection is secret");
    // The poll runs as admin itself; the steps go through sudo.
    assert.ok(!poll.create.includes("sudo"));
    const prep = res("k1-prep-kernel").inputs;
    assert.equal(prep.createLine, "sudo -n /bin/sh -s create");
    assert.equal(prep.deleteLine, "sudo -n /bin/sh -s delete");
    assert.match(prep.create, /^set -eu\n/);
    assert.deepEqual([plain(prep.connection).user, plain(prep.connection).hostKey], ["admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey"]);
});

test("no SSH wait is unbounded: the poll dials a bounded number of times within its timeouts, the tunnel steps a few", async () => {
    assert.deepEqual(SSH_DIALS, { dialErrorLimit: 5, perDialTimeout: 10 });
    for (const h of ["k1", "k2", "k3"]) {
        const poll = plain(res(`aws-${h}-poll`).inputs.connection);
        assert.deepEqual([poll.dialErrorLimit, poll.perDialTimeout], [AWS_POLL_DIALS.dialErrorLimit, AWS_POLL_DIALS.perDialTimeout], h);
        assert.ok(poll.dialErrorLimit > 0, "a limit of -1 would dial forever");
        assert.deepEqual(options.get(`aws-${h}-poll`)?.customTimeouts, AWS_POLL_TIMEOUTS, h);
        const step = plain(res(`${h === "k3" ? "k1" : h}-prep-kernel`).inputs.connection);
        assert.deepEqual([step.dialErrorLimit, step.perDialTimeout], [5, 10]);
    }
    // All the dials of the poll fit in its create timeout (dials at most 15 s each, back-off at most 5 s between).
    const minutes = Number(String(AWS_POLL_TIMEOUTS.create).replace(/m$/, ""));
    assert.ok((AWS_POLL_DIALS.dialErrorLimit * (AWS_POLL_DIALS.perDialTimeout + 5)) / 60 <= minutes);
});

test("the tunnel commands are deleted with their instance, and a replaced instance replaces them (identity = instance id)", async () => {
    viaDefault.hosts.forEach((h, i) => assert.equal(h.deletedWith, viaDefault.instances[i], h.name));
    for (const [cmd, instance] of [
        ["k1-prep-kernel", "aws-k1"],
        ["k2-prep-kernel", "aws-k2"],
        ["fou-k1-link", "aws-k1"],
        ["fou-k2-link", "aws-k2"],
    ]) {
        assert.equal((options.get(cmd)?.deletedWith as any)?.__name, instance, cmd);
        assert.ok(plain(res(cmd).inputs.triggers).includes(`${instance}-id`), `${cmd} lists the instance id in its triggers`);
    }
});

test("the private key is secret, in the component's output and in every connection sent", async () => {
    assert.equal(await pulumi.isSecret(viaDefault.privateKey), true);
    assert.equal(await valueOf(viaDefault.privateKey), PRIVATE_KEY);
    for (const name of ["aws-k1-poll", "aws-k2-poll", "aws-k3-poll"]) {
        const c = res(name).inputs.connection;
        assert.ok(Object.keys(c).includes("4dabf18193072939515e22adb298388d"), `${name}: ${JSON.stringify(c)}`);
    }
});

test("outputs: public and private IPs by host, and ssh commands as the distribution's user", async () => {
    assert.deepEqual(await valueOf(viaDefault.publicIps), { k1: "198.51.100.11", k2: "198.51.100.12", k3: "198.51.100.13" });
    assert.deepEqual(await valueOf(viaDefault.privateIps), { k1: "172.31.5.11", k2: "172.31.5.12", k3: "172.31.5.13" });
    assert.deepEqual(await valueOf(viaDefault.sshCommands), {
        k1: "ssh -i key.pem admin@198.51.100.11",
        k2: "ssh -i key.pem admin@198.51.100.12",
        k3: "ssh -i key.pem admin@198.51.100.13",
    });
    assert.deepEqual(await valueOf(viaCreated.privateIps), { a1: "10.99.1.21", a2: "10.99.1.22" });
    assert.equal(await valueOf(viaDefault.amiId), AMI);
    assert.equal(await valueOf(viaCreated.amiId), OVERRIDE_AMI);
});

test("the tunnel components run unchanged on the EC2 hosts: private addresses, the polled device", () => {
    // The step's create, as it reaches sudo -n /bin/sh on stdin.
    assert.equal(res("fou-k1-link").inputs.createLine, "sudo -n /bin/sh -s create");
    const link = res("fou-k1-link").inputs.create as string;
    // The words of the `ip link add` line, quoting aside (how the link quotes is its own business).
    const add = link
        .split("\n")
        .find((l) => l.startsWith("ip link add "))
        ?.replace(/'/g, "")
        .split(" ");
    assert.ok(add, link);
    const after = (word: string) => add[add.indexOf(word) + 1];
    assert.deepEqual(
        [add[3], after("remote"), after("local"), after("dev"), after("encap-dport")],
        ["ftok2", "172.31.5.12", "172.31.5.11", "ens5", "5555"],
        link,
    );
    assert.equal(plain(res("k1-prep-kernel").inputs.connection).host, "198.51.100.11");
});

test("the poll script finds this machine's device for its address, and the default route's for a foreign one", (t) => {
    let addrs: string;
    try {
        addrs = execFileSync("ip", ["-o", "-4", "addr", "show", "scope", "global"], { encoding: "utf8" });
    } catch {
        t.skip("no ip(8) here");
        return;
    }
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//m.exec(addrs);
    if (!m) {
        t.skip("no global IPv4 address here");
        return;
    }
    // Under dash, bash and busybox sh, which must agree.
    const poll = (address: string) => {
        const r = runInAll(pollScript(address));
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
    };
    assert.equal(poll(m[2]), `device=${m[1]}\n`);
    const dflt = / dev (\S+)/.exec(execFileSync("ip", ["-o", "-4", "route", "show", "default"], { encoding: "utf8" }))?.[1];
    if (dflt) {
        assert.equal(poll("192.0.2.254"), `device=${dflt}\n`);
    }
    // A hostile address stays one quoted argument: it matches nothing and runs nothing.
    const hostile = "1.2.3.4/32; touch /tmp/fou-aws-poll-pwned #";
    runInAll(pollScript(hostile) + " || true");
    assert.throws(() => execFileSync("test", ["-e", "/tmp/fou-aws-poll-pwned"]));
});

// The stand-in's directory is each shell's own.
for (const shell of HOST_SHELLS) {
    test(`the poll waits for cloud-init and fails, naming its status, unless it finished the user data cleanly (${shell.name})`, (t) => {
        const bin = mkdtempSync(path.join(tmpdir(), "fou-aws-ci-"));
        t.after(() => rmSync(bin, { recursive: true, force: true }));
        const run = (status: string) => {
            writeFileSync(path.join(bin, "cloud-init"), `#!/bin/sh\n[ "$1 $2" = "status --wait" ] || exit 9\nprintf '....\\n${status}\\n'\n`, { mode: 0o755 });
            return runIn(shell, pollScript("127.0.0.1"), { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
        };
        const done = run("status: done");
        assert.equal(done.code, 0, done.stderr);
        assert.equal(done.stdout, "device=lo\n");
        const failed = run("status: error");
        assert.equal(failed.code, 1);
        assert.equal(failed.stdout, "");
        assert.match(failed.stderr, /^fou-tunnel: .*: cloud-init did not finish the user data cleanly \(status: error\): see \/var\/log\/cloud-init\.log/);
    });
}

test("parsePollOutput takes the device line and refuses anything but an interface name", () => {
    assert.equal(parsePollOutput("Welcome\ndevice=ens5"), "ens5");
    for (const bad of ["", "device=", "device=ens5; reboot", "device=a234567890123456"]) {
        assert.throws(() => parsePollOutput(bad), FouInputError, bad);
    }
});

const INVALID_ARGS: [string, Omit<AwsHostsArgs, "settings">, RegExp][] = [
    ["one host", { hostNames: ["k1"], udpRules: [] }, /^AwsHosts bad: hostNames must list at least two hosts \(got \["k1"\]\)$/],
    ["no hosts", { hostNames: [], udpRules: [] }, /^AwsHosts bad: hostNames must list at least two hosts \(got \[\]\)$/],
    [
        "a duplicate name",
        { hostNames: ["k1", "k2", "k1"], udpRules: tunnelRules([["k1", "k2", 5555]]) },
        /^AwsHosts bad: hostNames lists "k1" more than once; every host needs its own name$/,
    ],
    ["a bad name", { hostNames: ["k1", "K 2"], udpRules: [] }, /^AwsHosts bad: hostNames\[1\] must be 1-12 characters of a-z, 0-9 and '-', starting with a letter \(got "K 2"\)$/],
    [
        "a rule to an unknown host",
        { hostNames: ["k1", "k2"], udpRules: [{ to: "k9", from: "k1", port: 5555 }] },
        /^AwsHosts bad: udpRules\[0\]\.to "k9" is not one of the hosts \(k1, k2\)$/,
    ],
    [
        "a rule from an unknown host",
        { hostNames: ["k1", "k2"], udpRules: [...tunnelRules([["k1", "k2", 5555]]), { to: "k1", from: "k3", port: 5556 }] },
        /^AwsHosts bad: udpRules\[2\]\.from "k3" is not one of the hosts \(k1, k2\)$/,
    ],
    [
        "a rule from a host to itself",
        { hostNames: ["k1", "k2"], udpRules: [{ to: "k2", from: "k2", port: 5555 }] },
        /^AwsHosts bad: udpRules\[0\] admits k2 to itself; a rule's to and from must be different hosts$/,
    ],
    [
        "port 0",
        { hostNames: ["k1", "k2"], udpRules: [{ to: "k1", from: "k2", port: 0 }] },
        /^AwsHosts bad: udpRules\[0\]\.port must be a UDP port number from 1 to 65535 \(got 0\)$/,
    ],
    [
        "port 65536",
        { hostNames: ["k1", "k2"], udpRules: [{ to: "k1", from: "k2", port: 5555 }, { to: "k2", from: "k1", port: 65536 }] },
        /^AwsHosts bad: udpRules\[1\]\.port must be a UDP port number from 1 to 65535 \(got 65536\)$/,
    ],
    [
        "two rules spelling one resource name",
        { hostNames: ["a-from-b", "c", "a", "b-from-c"], udpRules: [{ to: "a-from-b", from: "c", port: 5555 }, { to: "a", from: "b-from-c", port: 5555 }] },
        /^AwsHosts bad: the rules to a from b-from-c and to a-from-b from c \(port 5555\) would share the resource name bad-a-from-b-from-c-udp-5555; rename a host$/,
    ],
];

for (const [what, args, message] of INVALID_ARGS) {
    test(`AwsHosts rejects ${what} with its message, before declaring anything`, async () => {
        await settle();
        const before = recorded.length;
        assert.throws(
            () => new AwsHosts("bad", { settings: defaults, ...args }, { parent: awsRoot }),
            (e: unknown) => e instanceof FouInputError && e.problems.length === 1 && message.test(e.message),
            `expected ${message}`,
        );
        await settle();
        assert.equal(recorded.length, before);
    });
}

test("AwsHosts reports every problem of its arguments at once", () => {
    assert.throws(
        () =>
            new AwsHosts(
                "bad",
                { settings: defaults, hostNames: ["k1"], udpRules: [{ to: "k1", from: "k1", port: -1 }] },
                { parent: awsRoot },
            ),
        (e: unknown) =>
            e instanceof FouInputError &&
            e.problems.length === 3 &&
            /hostNames must list at least two hosts/.test(e.problems[0]) &&
            /udpRules\[0\] admits k1 to itself/.test(e.problems[1]) &&
            /udpRules\[0\]\.port must be a UDP port/.test(e.problems[2]),
    );
});

test("AwsHosts takes hosts without tunnel rules: instances, no UDP open", async () => {
    const bare = new AwsHosts("bare", { settings: defaults, hostNames: ["k1", "k2"], udpRules: [] }, { parent: awsRoot });
    await valueOf(bare.sshCommands);
    await settle();
    assert.equal(children("bare").filter((c) => c.startsWith("aws:ec2/instance:Instance")).length, 2);
    assert.ok(!rules("bare").some((r) => r.proto === "udp"));
});

// ---- parseAwsSettings ----

function awsFrom(cfg: Record<string, unknown>) {
    return parseAwsSettings((k) => cfg[k]);
}

test("aws defaults: Debian 12 on t3.micro in the default VPC, user admin, source/dest check on", () => {
    assert.deepEqual(awsFrom({ awsOperatorCidr: "203.0.113.0/24" }), {
        instanceType: "t3.micro",
        amiOwner: "136693071363",
        amiNameFilter: "debian-12-amd64-20*",
        vpc: "default",
        operatorCidr: "203.0.113.0/24",
        sshUser: "admin",
        routesBeyondGwips: false,
    });
});

test("aws settings accept what `pulumi config set` stores: strings, a bare address, a numeric owner", () => {
    const s = awsFrom({
        awsOperatorCidr: "198.51.100.7",
        awsRoutesBeyondGwips: "true",
        awsAmiOwner: 99720109477,
        awsAmi: "ami-12345678",
        awsVpc: "create",
        awsSshUser: "ubuntu",
        awsAmiNameFilter: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
    });
    assert.equal(s.operatorCidr, "198.51.100.7/32");
    assert.equal(s.routesBeyondGwips, true);
    assert.equal(s.amiOwner, "099720109477");
    assert.equal(s.ami, "ami-12345678");
    assert.equal(s.vpc, "create");
    assert.equal(s.sshUser, "ubuntu");
    assert.equal(awsFrom({ awsOperatorCidr: "10.0.0.0/8", awsAmi: "ami-0123456789abcdef0" }).ami, "ami-0123456789abcdef0");
});

const OK = { awsOperatorCidr: "203.0.113.0/24" };
const INVALID_AWS: [Record<string, unknown>, RegExp][] = [
    [{}, /^fou-tunnel:awsOperatorCidr is required: the IPv4 prefix SSH is allowed from/],
    [{ awsOperatorCidr: "203.0.113.0/33" }, /^fou-tunnel:awsOperatorCidr must be an IPv4 prefix like 203\.0\.113\.0\/24 \(got "203\.0\.113\.0\/33"\)$/],
    [{ awsOperatorCidr: "my-laptop" }, /^fou-tunnel:awsOperatorCidr must be an IPv4 prefix like 203\.0\.113\.0\/24/],
    [{ awsOperatorCidr: "203.0.113.5/24" }, /^fou-tunnel:awsOperatorCidr 203\.0\.113\.5\/24 has host bits set; did you mean 203\.0\.113\.0\/24\?$/],
    [{ awsOperatorCidr: "0.0.0.0/0" }, /^fou-tunnel:awsOperatorCidr 0\.0\.0\.0\/0 would open SSH to every address/],
    [{ ...OK, awsAmi: "ami-123" }, /^fou-tunnel:awsAmi must be an AMI id: "ami-" and 8 or 17 hex digits \(got "ami-123"\)$/],
    [{ ...OK, awsAmi: "ami-0123456789ABCDEF0" }, /^fou-tunnel:awsAmi must be an AMI id/],
    [{ ...OK, awsVpc: "new" }, /^fou-tunnel:awsVpc must be "default" \(the region's default VPC\) or "create"/],
    [{ ...OK, awsInstanceType: "t3.micro; reboot" }, /^fou-tunnel:awsInstanceType must be an EC2 instance type like t3\.micro/],
    [{ ...OK, awsAmiOwner: "debian" }, /^fou-tunnel:awsAmiOwner must be a 12-digit account id, "amazon", "aws-marketplace" or "self"/],
    [{ ...OK, awsAmiNameFilter: "*" }, /^fou-tunnel:awsAmiNameFilter must be an AMI name pattern/],
    [{ ...OK, awsAmiNameFilter: "debian-$(id)" }, /^fou-tunnel:awsAmiNameFilter must be an AMI name pattern/],
    [
        { ...OK, awsHostNames: ["k1", "k2"] },
        /^fou-tunnel:awsHostNames is no longer a setting of this program; name the hosts \(and the tunnels between them\) in the topology file, fou-tunnel:topology, and remove fou-tunnel:awsHostNames from the stack$/,
    ],
    [{ ...OK, awsHostNames: ["k1"] }, /^fou-tunnel:awsHostNames is no longer a setting of this program; name the hosts .* fou-tunnel:topology/],
    [{ ...OK, awsSshUser: "admin;id" }, /^fou-tunnel:awsSshUser must be a user name like admin or ubuntu/],
    [{ ...OK, awsSshUser: "root" }, /^fou-tunnel:awsSshUser cannot be root: the instances' user data makes this user \(with sudo\) and leaves root without any key/],
    [{ ...OK, awsRoutesBeyondGwips: "yes" }, /^fou-tunnel:awsRoutesBeyondGwips must be true or false \(got "yes"\)$/],
    [{ ...OK, awsRegion: "eu-west-1" }, /^fou-tunnel:awsRegion is not a setting of this program; set the region with `pulumi config set aws:region <region>`$/],
];

for (const [cfg, message] of INVALID_AWS) {
    test(`aws settings reject ${JSON.stringify(cfg)}`, () => {
        assert.throws(
            () => awsFrom(cfg),
            (e: unknown) => e instanceof FouInputError && e.problems.length === 1 && message.test(e.message),
            `expected ${message}`,
        );
    });
}

test("aws settings report every problem at once, naming the namespace given", () => {
    assert.throws(
        () => parseAwsSettings((k) => ({ awsVpc: "x", awsAmi: "x", awsSshUser: "" })[k as "awsVpc"], "fou"),
        (e: unknown) =>
            e instanceof FouInputError &&
            e.problems.length === 4 &&
            e.problems.every((p) => p.startsWith("fou:aws")),
    );
});

test("Pulumi.aws.yaml is a valid aws configuration, read the way `pulumi config` hands values over", () => {
    const file = YAML.parse(readFileSync(path.join(__dirname, "../../Pulumi.aws.yaml"), "utf8")) as { config: Record<string, unknown> };
    // The engine gives the program strings: scalars as written, lists and maps as JSON.
    const asConfig = (v: unknown) => (typeof v === "object" ? JSON.stringify(v) : String(v));
    const get = (k: string) => {
        const v = file.config[`fou-tunnel:${k}`];
        if (v === undefined) {
            return undefined;
        }
        try {
            return JSON.parse(asConfig(v)) as unknown;
        } catch {
            return asConfig(v);
        }
    };
    assert.equal(file.config["fou-tunnel:hosts"], "aws");
    assert.ok(typeof file.config["aws:region"] === "string");
    assert.deepEqual(parseAwsSettings(get), { ...awsFrom({ awsOperatorCidr: "203.0.113.0/24" }) });
});
