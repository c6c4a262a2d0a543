/**
 * AwsHosts' own arguments: each invalid one rejected with its message before anything is
 * declared, every problem at once, and hosts without tunnel rules.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { recorded, settle, valueOf } from "./mocks";
import { FouInputError } from "../../lib/validate";
import { AwsHosts, AwsHostsArgs } from "../../hosts/aws";
import { awsRoot, children, declareAwsHosts, defaults, rules, tunnelRules } from "./awsFixtures";

declareAwsHosts();

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
