/**
 * The aws hosts under mocks, as the aws tests share them: mocks that answer the EC2 lookups with
 * real-looking values (mocks.ts answers every call with its inputs), two AwsHosts (three hosts in
 * the default VPC, two in a created one) and a FouTunnel on the first two EC2 hosts, declared once
 * per test file by `declareAwsHosts`, and the helpers that read what they declared.
 */
import { before } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { decodeStep, named, recorded, settle, valueOf } from "./mocks";
import { FouTunnel } from "../../components/fouTunnel";
import { HostPrep } from "../../components/hostPrep";
import { AwsHosts, AwsHostsArgs } from "../../hosts/aws";
import { AwsSettings, parseAwsSettings } from "../../hosts/awsConfig";

// mocks.ts answers every call with its inputs; EC2 lookups need real-looking answers, so these
// fixtures install their own mocks. They record into the same `recorded` list and throw on an
// unknown call.
export const calls: { token: string; inputs: Record<string, any> }[] = [];
const parents = new Map<string, string | undefined>();
/** Each resource's options as declared (mocks do not see them). */
export const options = new Map<string, pulumi.CustomResourceOptions>();
export const AMI = "ami-0123456789abcdef0";
export const OVERRIDE_AMI = "ami-0fedcba9876543210";
const ADDRESSES: Record<string, { privateIp: string; publicIp: string }> = {
    "aws-k1": { privateIp: "172.31.5.11", publicIp: "198.51.100.11" },
    "aws-k2": { privateIp: "172.31.5.12", publicIp: "198.51.100.12" },
    "aws-k3": { privateIp: "172.31.5.13", publicIp: "198.51.100.13" },
    "awsc-a1": { privateIp: "10.99.1.21", publicIp: "198.51.100.21" },
    "awsc-a2": { privateIp: "10.99.1.22", publicIp: "198.51.100.22" },
};
export const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nMOCK\n-----END OPENSSH PRIVATE KEY-----\n";
export const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAmock\n";
/** Each host key of the mocks is its own: `aws-k1-host-key` → `…AAAAhostawsk1hostkey`. */
export const hostPrivate = (resource: string) => `-----BEGIN OPENSSH PRIVATE KEY-----\nHOST ${resource}\n-----END OPENSSH PRIVATE KEY-----\n`;
export const hostPublic = (resource: string) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhost${resource.replace(/[^a-z0-9]/g, "")}\n`;

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

// Mocks do not see resource options; a transformation on the aws root records each parent.
export let awsRoot: pulumi.ComponentResource;
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

export const OPERATOR = "203.0.113.0/24";
export const defaults: AwsSettings = parseAwsSettings((k) => ({ awsOperatorCidr: OPERATOR })[k as "awsOperatorCidr"]);
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
export function tunnelRules(tunnels: [string, string, number][]): AwsHostsArgs["udpRules"] {
    return tunnels.flatMap(([a, b, port]) => [
        { to: a, from: b, port },
        { to: b, from: a, port },
    ]);
}

/** Three hosts, two tunnels on their own ports: k1-k2 on 5555, k1-k3 on 5556. */
const THREE = { hostNames: ["k1", "k2", "k3"], udpRules: tunnelRules([["k1", "k2", 5555], ["k1", "k3", 5556]]) };

export let viaDefault: AwsHosts;
export let viaCreated: AwsHosts;

/** Registers the test file's `before`: the mocks above replace mocks.ts's, then the hosts and the tunnel are declared. */
export function declareAwsHosts(): void {
    before(async () => {
        // mocks.ts registered its own root with its mocks; let that finish before replacing them.
        await settle();
        pulumi.runtime.setMocks(mocks, "fou-tunnel", "unit", false);
        awsRoot = makeRoot();
        viaDefault = new AwsHosts("aws", { settings: defaults, ...THREE }, { parent: awsRoot });
        // The same tunnel end listed twice (two tunnels' worth of rules handing in the same one) is one rule.
        const oneTunnel = tunnelRules([["a1", "a2", 6000]]);
        viaCreated = new AwsHosts("awsc", { settings: created, hostNames: ["a1", "a2"], udpRules: [...oneTunnel, oneTunnel[0]] }, { parent: awsRoot });
        const tunnel = tunnelOnEc2(viaDefault);
        for (const h of [...viaDefault.hosts, ...viaCreated.hosts]) {
            await valueOf(h.device);
        }
        await valueOf(viaDefault.sshCommands);
        await valueOf(viaCreated.sshCommands);
        await valueOf(tunnel.ends[1].mtu);
        await settle();
    });
}

/** The same components as on local VMs, on the first two EC2 hosts. */
function tunnelOnEc2(aws: AwsHosts): FouTunnel {
    const hosts = aws.hosts;
    const preps = hosts.map((host) => new HostPrep(`${host.name}-prep`, { host }, { parent: awsRoot }));
    return new FouTunnel(
        "fou",
        {
            a: { host: hosts[0], gwip: "10.10.10.1", prepared: preps[0].ready },
            b: { host: hosts[1], gwip: "10.10.10.2", prepared: preps[1].ready },
            port: 5555,
            check: false,
        },
        { parent: awsRoot },
    );
}

/** The recorded resource of that name. */
export const res = named;

export function children(component: string) {
    return recorded
        .filter((r) => r.parent === component)
        .map((r) => `${r.type} ${r.name}`)
        .sort();
}

export function rules(component: string) {
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
