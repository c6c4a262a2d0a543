/**
 * The topology file as a file: YAML syntax and its hazards (duplicate keys, aliases, tags, an
 * alias bomb), the top level and unknown keys, every problem reported at once with its position,
 * an unreadable path, the firewall switch, and options that are a programming error.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FouInputError } from "../../lib/validate";
import { TopologyOptions, loadTopology, parseTopology } from "../../topology";
import { Case, LOCAL, T12, TWO_HOSTS, parse, problems, rejectsEach, y } from "./topologyFixtures";

const FILE_CASES: Case[] = [
    // YAML itself
    {
        rule: "YAML syntax error, with the library's position",
        text: "hosts: [k1, k2\ntunnels: []\n",
        at: "t.yaml:2:1: YAML syntax",
        says: /^Flow sequence .* end with a \]$/,
    },
    {
        rule: "duplicate key",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    port: 5555\n    port: 5556\n",
        at: "t.yaml:7:5: tunnels[0].port",
        says: /^duplicate key port: already set at line 6/,
    },
    {
        rule: "duplicate top-level key",
        text: TWO_HOSTS + T12 + "hosts: []\n",
        at: "t.yaml:6:1: hosts",
        says: /^duplicate key hosts: already set at line 1/,
    },
    {
        rule: "an alias without its anchor",
        text: TWO_HOSTS + "tunnels:\n  - hosts: *pair\n",
        at: "t.yaml:5:12: tunnels[0].hosts",
        says: /^alias \*pair refers to no anchor$/,
    },
    {
        rule: "an unknown tag (a YAML warning) is an error",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    mtu: !bytes 1400\n",
        at: "t.yaml:6:10: YAML",
        says: /^Unresolved tag: !bytes; a topology file uses plain YAML without tags$/,
    },
    {
        rule: "keys must be names",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    1400: mtu\n",
        at: "t.yaml:6:5: tunnels[0]",
        says: /^keys must be names like port \(got 1400\)$/,
    },
    // Top level and unknown keys
    {
        rule: "top level must be a mapping",
        text: "- k1\n- k2\n",
        at: "t.yaml:1:1: top level",
        says: /^must be a mapping with the keys hosts and tunnels \(got a list of 2\)$/,
    },
    {
        rule: "an empty file",
        text: "# only a comment\n",
        at: "t.yaml:1:1: top level",
        says: /\(got an empty file\)$/,
    },
    {
        rule: "unknown top-level key, with a suggestion",
        text: TWO_HOSTS + "tunnel:\n  - hosts: [k1, k2]\n",
        at: "t.yaml:4:1: tunnel",
        says: /^unknown key \(did you mean tunnels\?\); top-level keys are hosts, gwipPool, gwipPool6, defaults, tunnels, firewall$/,
    },
    {
        rule: "unknown tunnel key (gwip for gwips)",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwip: [10.10.10.1, 10.10.10.2]\n",
        at: "t.yaml:6:5: tunnels[0].gwip",
        says: /^unknown key \(did you mean gwips\?\); tunnel keys are hosts, name, protocol, .*, routes$/,
    },
    {
        rule: "unknown host key",
        text: "hosts:\n  - name: k1\n    adress: 198.51.100.151\n  - name: k2\n" + T12,
        at: "t.yaml:3:5: hosts[0].adress",
        says: /^unknown key \(did you mean address\?\); host keys are name, address, underlayAddress, fou$/,
    },
    {
        rule: "unknown defaults key",
        text: TWO_HOSTS + "defaults:\n  prot: gre\n" + T12,
        at: "t.yaml:5:3: defaults.prot",
        says: /^unknown key \(did you mean protocol\?\); defaults keys are protocol, encap, port, sport, csum, mtu, ttl, persist$/,
    },
];

rejectsEach(FILE_CASES);

test("every problem of a file is reported at once, in file order", () => {
    const found = problems(y`
        hosts:
          - name: k1
          - name: k1
        tunnels:
          - hosts: [k1, k2]
            port: 0
            ttl: 300
    `);
    assert.deepEqual(found, [
        "t.yaml:3:11: hosts[1].name: host name k1 is already used by hosts[0] (line 2)",
        "t.yaml:5:17: tunnels[0].hosts[1]: unknown host \"k2\"; the hosts are k1",
        "t.yaml:6:11: tunnels[0].port: must be a UDP port number from 1 to 65535 (got 0)",
        "t.yaml:7:10: tunnels[0].ttl: must be an integer from 1 to 255 (got 300)",
    ]);
});

test("a file of aliases of aliases is cut short, not expanded", () => {
    const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 10; i++) {
        lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
    }
    const found = problems(lines.join("\n") + "\n");
    assert.ok(found.some((p) => /the file expands to more than 100000 values/.test(p)), found.slice(0, 3).join("\n"));
});

test("a file with one problem has it as the error's whole message", () => {
    assert.throws(
        () => parse(TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    ttl: 0\n"),
        (e: unknown) => e instanceof FouInputError && e.message === "t.yaml:6:10: tunnels[0].ttl: must be an integer from 1 to 255 (got 0)",
    );
});

test("loadTopology: an unreadable file names the path and the reason; messages carry the path", () => {
    const dir = mkdtempSync(join(tmpdir(), "topology-"));
    const missing = join(dir, "missing.yaml");
    assert.throws(
        () => loadTopology(missing, LOCAL),
        (e: unknown) => e instanceof FouInputError && e.message === `${missing}: cannot read the topology file: no such file`,
    );
    assert.throws(
        () => loadTopology(dir, LOCAL),
        (e: unknown) => e instanceof FouInputError && e.message === `${dir}: cannot read the topology file: it is a directory`,
    );
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, TWO_HOSTS + "tunnels:\n  - hosts: [k1, k9]\n");
    assert.throws(
        () => loadTopology(bad, LOCAL),
        (e: unknown) => e instanceof FouInputError && e.message.startsWith(`${bad}:5:17: tunnels[0].hosts[1]: unknown host "k9"`),
    );
});

test("a non-local, non-aws kind or a bad underlay is a programming error, not a file problem", () => {
    assert.throws(() => parse(TWO_HOSTS + T12, { kind: "gcp" } as unknown as TopologyOptions), TypeError);
    assert.throws(() => parse(TWO_HOSTS + T12, { kind: "local", underlay: "198.51.100.1" }), TypeError);
});

test("firewall: false opts out; a non-boolean is rejected with its position", () => {
    const base = "hosts: [{name: k1}, {name: k2}]\ntunnels: [{hosts: [k1, k2]}]\n";
    assert.equal(parseTopology(base + "firewall: false\n", "f.yaml", { kind: "local" }).firewall, false);
    assert.throws(
        () => parseTopology(base + "firewall: no\n", "f.yaml", { kind: "local" }),
        /f\.yaml:3:11: firewall: must be true or false \(got "no"; YAML 1\.2 reads no as a string\)/,
    );
});
