import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { Expected, fixtureTests, prints } from "./fakeHost";
import { HOST_SHELLS, runIn, runInAll } from "./hostShells";
import { recorded, root, settle } from "./mocks";
import { Firewall, firewallObject, firewallTable } from "../../components/firewall";
import { TunnelHost } from "../../components/host";
import { pathsUnder } from "../../components/hostPaths";

const k1: TunnelHost = { name: "k1", underlayAddress: "198.51.100.151", device: "eth0", connection: { host: "198.51.100.151" } };

/** The ruleset apply feeds to `nft -f -`, unquoted by each host shell (they must agree). */
function ruleset(apply: string): string {
    const printf = apply.slice(apply.indexOf("printf '%s' "), apply.lastIndexOf("| nft -f -"));
    const r = runInAll(printf);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
}

test("one table per stack, named by a hash (nft identifiers take no dots or dashes)", () => {
    assert.match(firewallTable("fou-tunnel.dev"), /^fou_[0-9a-f]{12}$/);
    assert.notEqual(firewallTable("fou-tunnel.dev"), firewallTable("fou-tunnel.prod"));
});

test("each port accepts its peers (IPv4 and IPv6 apart) and drops everyone else, counted", () => {
    const o = firewallObject("fou_t", [
        { port: 5555, peers: ["198.51.100.152"] },
        { port: 5556, peers: ["198.51.100.152", "198.51.100.153", "2001:db8::3"] },
    ]);
    const text = ruleset(o.apply);
    const rules = text.split("\n").filter((l) => l.includes("udp dport")).map((l) => l.trim().replace(/ comment ".*"$/, ""));
    assert.deepEqual(rules, [
        "udp dport 5555 ip saddr { 198.51.100.152 } accept",
        "udp dport 5555 counter drop",
        "udp dport 5556 ip saddr { 198.51.100.152, 198.51.100.153 } accept",
        "udp dport 5556 ip6 saddr { 2001:db8::3 } accept",
        "udp dport 5556 counter drop",
    ]);
    // Loaded in one transaction that replaces any older version of the table.
    assert.match(text, /^table inet fou_t\ndelete table inet fou_t\ntable inet fou_t \{\n  chain input \{\n    type filter hook input priority filter; policy accept;\n/);
    // The check counts the rules carrying this ruleset's tag; remove deletes only our table.
    const tag = /comment "(fou-tunnel [0-9a-f]{16})"/.exec(text)![1];
    assert.ok(o.check.includes(`'comment "${tag}"'`), o.check);
    assert.match(o.remove!, /nft list table inet 'fou_t' 2>\/dev\/null; \} >\/dev\/null; then nft delete table inet 'fou_t'; fi$/m);
});

const ONE_PORT = firewallObject("fou_t", [{ port: 5555, peers: ["198.51.100.152"] }]);
const TAG = /comment "(fou-tunnel [0-9a-f]{16})"/.exec(ONE_PORT.apply)![1];
const ACCEPT = `udp dport 5555 ip saddr 198.51.100.152 accept comment "${TAG}"`;
const DROP = `udp dport 5555 counter packets 0 bytes 0 drop comment "${TAG}"`;
const CHANGED = "nftables table inet fou_t is missing or changed\n";

/** A fake nft that lists the table with these rule lines. */
const nftLists = (lines: string[]) => ({ nft: prints(["table inet fou_t {", "\tchain input {", ...lines.map((l) => `\t\t${l}`), "\t}", "}"]) });

// A fake host whose nf_tables is loaded: its /sys/module holds nf_tables.
const NFT_HOST = mkdtempSync(path.join(tmpdir(), "fou-nft-"));
mkdirSync(path.join(NFT_HOST, "sys/module/nf_tables"), { recursive: true });
after(() => rmSync(NFT_HOST, { recursive: true, force: true }));
const ON_NFT_HOST = firewallObject("fou_t", [{ port: 5555, peers: ["198.51.100.152"] }], pathsUnder(NFT_HOST));

fixtureTests(
    "the check passes when the table has every tagged rule, and fails on a missing or other rule",
    (
        [
            ["every rule", [ACCEPT, DROP], { code: 0, out: "" }],
            ["a rule missing", [ACCEPT], { code: 1, out: CHANGED }],
            ["another tag", [ACCEPT, DROP.replace(TAG, "fou-tunnel 0000000000000000")], { code: 1, out: CHANGED }],
        ] as [string, string[], Expected][]
    ).map(([name, lines, expect]) => ({
        name,
        script: () => ON_NFT_HOST.check,
        fakes: nftLists(lines),
        set: "" as const,
        expect,
    })),
);

for (const shell of HOST_SHELLS) {
    test(`a host without nft fails with the fix named (${shell.name})`, () => {
        const o = firewallObject("fou_t", [{ port: 5555, peers: ["198.51.100.152"] }]);
        const r = runIn(shell, `PATH=/nonexistent; hostname() { echo k9; }\n${o.apply}`);
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stderr, /fou-tunnel: k9 has no nft: install nftables, or set firewall: false in the topology/);
    });
}

test("Firewall rejects a peer that is not an address, or a bad port, before declaring anything", async () => {
    const before = recorded.length;
    assert.throws(
        () => new Firewall("fw-bad", { host: k1, namespace: "p.s", ports: [{ port: 0, peers: ["198.51.100.152; flush ruleset"] }] }, { parent: root }),
        /Firewall fw-bad: ports\[0\]\.port must be a UDP port number[\s\S]*Firewall fw-bad: ports\[0\]\.peers\[0\] must be an IPv4 or IPv6 address/,
    );
    await settle();
    assert.equal(recorded.length, before);
});
