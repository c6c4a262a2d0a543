/**
 * The aws stack's settings (parseAwsSettings): defaults, what `pulumi config set` stores, each
 * invalid value with its message, and Pulumi.aws.yaml read as the engine hands it over.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import YAML from "yaml";
import { FouInputError } from "../../lib/validate";
import { parseAwsSettings } from "../../hosts/awsConfig";

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
