/**
 * Prints the user data the aws stack sends for each EC2 instance, from a run of `AwsHosts` under
 * Pulumi mocks: the instances' `userData` input as the engine receives it (secret unwrapped),
 * with the stack's SSH key and each host's host key given instead of generated.
 *
 *   node --require ts-node/register test/aws/render-user-data.ts INPUT.json > user-data.json
 *
 * INPUT.json: {"authorizedKey": "ssh-ed25519 AAAA…", "hosts": {"k1": {"privateKey": "-----BEGIN
 * OPENSSH PRIVATE KEY-----…", "publicKey": "ssh-ed25519 AAAA…"}, …}, "sshUser"?: "admin"}
 * Output: {"k1": "#cloud-config\n…", …}, hosts in the order given. The integration test
 * test/integration/cloudInit.test.ts boots cloud-init VMs with exactly this text.
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";

interface Input {
    readonly authorizedKey: string;
    readonly hosts: Record<string, { readonly privateKey: string; readonly publicKey: string }>;
    readonly sshUser?: string;
}

const SECRET = "4dabf18193072939515e22adb298388d";
const unwrap = (v: any): any => (v && typeof v === "object" && SECRET in v ? unwrap(v.value) : v);

export async function renderUserData(input: Input): Promise<Record<string, string>> {
    const component = "aws"; // the name index.ts gives AwsHosts
    const names = Object.keys(input.hosts);
    const userData = new Map<string, string>();
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    pulumi.runtime.setMocks(
        {
            newResource(args) {
                const state: Record<string, any> = { ...args.inputs };
                if (args.type === "tls:index/privateKey:PrivateKey") {
                    const host = names.find((h) => args.name === `${component}-${h}-host-key`);
                    Object.assign(
                        state,
                        host !== undefined
                            ? { privateKeyOpenssh: input.hosts[host].privateKey, publicKeyOpenssh: input.hosts[host].publicKey }
                            : { privateKeyOpenssh: "(not used)", publicKeyOpenssh: input.authorizedKey },
                    );
                }
                if (args.type === "aws:ec2/instance:Instance") {
                    const host = args.name.slice(component.length + 1);
                    userData.set(host, unwrap(args.inputs.userData));
                    Object.assign(state, { privateIp: `10.0.0.${userData.size}`, publicIp: `192.0.2.${userData.size}` });
                    if (userData.size === names.length) {
                        done();
                    }
                }
                if (args.type === "command:remote:Command") {
                    Object.assign(state, { stdout: "device=ens5", stderr: "" });
                }
                return { id: `${args.name}-id`, state };
            },
            call(args) {
                switch (args.token) {
                    case "aws:ec2/getAmi:getAmi":
                        return { id: "ami-0123456789abcdef0", imageId: "ami-0123456789abcdef0" };
                    case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
                        return { id: "x", locations: ["zone-a"] };
                    case "aws:ec2/getVpc:getVpc":
                        return { id: "vpc-default" };
                    case "aws:ec2/getSubnet:getSubnet":
                        return { id: "subnet-default" };
                }
                throw new Error(`unexpected call ${args.token}`);
            },
        },
        "fou-tunnel",
        "aws",
        false,
    );
    // After setMocks: the modules read the runtime's settings when they first declare something.
    const { AwsHosts } = await import("../../hosts/aws");
    const { parseAwsSettings } = await import("../../hosts/awsConfig");
    const cfg: Record<string, string> = { awsOperatorCidr: "203.0.113.0/24", ...(input.sshUser ? { awsSshUser: input.sshUser } : {}) };
    new AwsHosts(component, { settings: parseAwsSettings((k) => cfg[k]), hostNames: names, udpRules: [] });
    await all;
    return Object.fromEntries(names.map((n) => [n, userData.get(n) as string]));
}

if (require.main === module) {
    const file = process.argv[2];
    if (!file) {
        console.error("usage: render-user-data.ts INPUT.json");
        process.exit(2);
    }
    renderUserData(JSON.parse(readFileSync(file, "utf8")) as Input).then(
        (out) => process.stdout.write(JSON.stringify(out) + "\n"),
        (e) => {
            console.error(e);
            process.exit(1);
        },
    );
}
