import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FouInputError } from "../../lib/validate";
import { DEFAULT_GWIP_POOL, DEFAULT_GWIP_POOL6, DEFAULT_PORT, Topology, TopologyOptions, loadTopology, parseTopology } from "../../topology";

const LOCAL: TopologyOptions = { kind: "local", underlay: "198.51.100.1/24" };
const AWS: TopologyOptions = { kind: "aws" };

/** A YAML text written indented in the test: drops the first line break and the common indentation. */
function y(strings: TemplateStringsArray, ...values: unknown[]): string {
    const raw = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ""), "");
    const lines = raw.replace(/^\n/, "").replace(/\n[ ]*$/, "\n").split("\n");
    const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
    return lines.map((l) => l.slice(indent)).join("\n");
}

function parse(text: string, options: TopologyOptions = LOCAL): Topology {
    return parseTopology(text, "t.yaml", options);
}

function problems(text: string, options: TopologyOptions = LOCAL): string[] {
    try {
        parse(text, options);
    } catch (e) {
        assert.ok(e instanceof FouInputError, `not a FouInputError: ${String(e)}`);
        return e.problems;
    }
    assert.fail(`no error for:\n${text}`);
}

/** Asserts that one problem is `<at>: <rule>`, at being `t.yaml:line:col: path`. */
function rejects(text: string, at: string, rule: RegExp, options: TopologyOptions = LOCAL): string[] {
    const found = problems(text, options);
    const match = found.filter((p) => p.startsWith(at + ": ") && rule.test(p.slice(at.length + 2)));
    assert.ok(match.length > 0, `expected "${at}: ${rule}" among:\n  ${found.join("\n  ")}`);
    return found;
}

const TWO_HOSTS = y`
    hosts:
      - name: k1
      - name: k2
`;

// ---------------------------------------------------------------------------------------------
// Happy paths

test("guide.yaml is exactly the guide's two hosts and tunnel", () => {
    const t = loadTopology("topologies/guide.yaml", LOCAL);
    assert.deepEqual(t, {
        source: "topologies/guide.yaml",
        hosts: [
            { name: "k1", address: "198.51.100.151", fou: true },
            { name: "k2", address: "198.51.100.152", fou: true },
        ],
        tunnels: [
            {
                name: "k1-k2",
                protocol: "ipip",
                ipproto: 4,
                family: 4,
                encap: "fou",
                port: 5555,
                sport: "auto",
                csum: false,
                ttl: 255,
                persist: false,
                ends: [
                    { host: "k1", gwip: "10.10.10.1", ifname: "ftok2", routes: [] },
                    { host: "k2", gwip: "10.10.10.2", ifname: "ftok1", routes: [] },
                ],
            },
        ],
        ports: [
            { host: "k1", port: 5555, encap: "fou", ipproto: 4, persist: false, tunnels: ["k1-k2"] },
            { host: "k2", port: 5555, encap: "fou", ipproto: 4, persist: false, tunnels: ["k1-k2"] },
        ],
        // Receive ports are closed to strangers unless the file says `firewall: false`.
        firewall: true,
    });
    assert.equal("mtu" in t.tunnels[0], false);
});

test("the smallest topology gets the guide's values from the defaults", () => {
    const t = parse(TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n");
    const guide = loadTopology("topologies/guide.yaml", LOCAL);
    assert.deepEqual({ ...t, source: guide.source }, guide);
    assert.equal(DEFAULT_PORT, 5555);
    assert.equal(DEFAULT_GWIP_POOL, "10.10.10.0/24");
    assert.equal(DEFAULT_GWIP_POOL6, "fd00:10:10:10::/64");
});

test("mesh3.yaml: three tunnels of three kinds, persisted, k3's GUE port 5556 shared", () => {
    const t = loadTopology("topologies/mesh3.yaml", LOCAL);
    assert.deepEqual(
        t.hosts.map((h) => [h.name, h.address, h.fou]),
        [
            ["k1", "198.51.100.151", true],
            ["k2", "198.51.100.152", true],
            ["k3", "198.51.100.153", true],
        ],
    );
    const [k1k2, k1k3, k2k3] = t.tunnels;
    assert.deepEqual(t.tunnels.map((x) => x.name), ["k1-k2", "k1-k3", "k2-k3"]);
    assert.ok(t.tunnels.every((x) => x.persist));

    assert.deepEqual([k1k2.protocol, k1k2.ipproto, k1k2.family, k1k2.encap, k1k2.port, k1k2.sport, k1k2.csum], ["ipip", 4, 4, "fou", 5555, "auto", false]);
    assert.deepEqual(k1k2.ends, [
        { host: "k1", gwip: "10.10.10.1", ifname: "ftok2", routes: ["10.20.2.0/24"] },
        { host: "k2", gwip: "10.10.10.2", ifname: "ftok1", routes: [] },
    ]);

    assert.deepEqual([k1k3.protocol, k1k3.ipproto, k1k3.encap, k1k3.port, k1k3.sport, k1k3.csum], ["ipip", 4, "gue", 5556, 5600, true]);
    assert.deepEqual(
        k1k3.ends.map((e) => [e.host, e.gwip, e.ifname]),
        [
            ["k1", "10.10.10.3", "ftok3"],
            ["k3", "10.10.10.4", "ftok1"],
        ],
    );

    assert.deepEqual([k2k3.protocol, k2k3.ipproto, k2k3.family, k2k3.encap, k2k3.port, k2k3.sport, k2k3.csum], ["sit", 41, 6, "gue", 5556, "auto", false]);
    assert.deepEqual(
        k2k3.ends.map((e) => [e.host, e.gwip, e.ifname]),
        [
            ["k2", "fd00:10:10:10::1", "ftok3"],
            ["k3", "fd00:10:10:10::2", "ftok2"],
        ],
    );

    assert.deepEqual(t.ports, [
        { host: "k1", port: 5555, encap: "fou", ipproto: 4, persist: true, tunnels: ["k1-k2"] },
        { host: "k1", port: 5556, encap: "gue", persist: true, tunnels: ["k1-k3"] },
        { host: "k2", port: 5555, encap: "fou", ipproto: 4, persist: true, tunnels: ["k1-k2"] },
        { host: "k2", port: 5556, encap: "gue", persist: true, tunnels: ["k2-k3"] },
        { host: "k3", port: 5556, encap: "gue", persist: true, tunnels: ["k1-k3", "k2-k3"] },
    ]);
});

test("allocation reserves explicit GWIPs first, then goes in file order, end a then b", () => {
    const text = y`
        hosts:
          - name: k1
          - name: k2
          - name: k3
        tunnels:
          - hosts: [k1, k2]
          - hosts: [k1, k3]
            gwips: [10.10.10.1, 10.10.10.3]
          - hosts: [k2, k3]
    `;
    const t = parse(text);
    assert.deepEqual(
        t.tunnels.map((x) => x.ends.map((e) => e.gwip)),
        [
            ["10.10.10.2", "10.10.10.4"],
            ["10.10.10.1", "10.10.10.3"],
            ["10.10.10.5", "10.10.10.6"],
        ],
    );
    assert.deepEqual(parse(text), t, "the same file gives the same GWIPs");
});

test("an IPv4 pool's network and broadcast addresses are never allocated", () => {
    const t = parse(TWO_HOSTS + "gwipPool: 192.0.2.4/30\ntunnels:\n  - hosts: [k1, k2]\n");
    assert.deepEqual(
        t.tunnels[0].ends.map((e) => e.gwip),
        ["192.0.2.5", "192.0.2.6"],
    );
});

test("IPv6 GWIPs and prefixes come out canonical", () => {
    const t = parse(
        TWO_HOSTS +
            y`
            tunnels:
              - hosts: [k1, k2]
                protocol: sit
                gwips: [fd00:10:10:10:0::1, FD00:10:10:10::0002]
                routes:
                  k2: [fd00:20:0:0::/64, "2001:db8::1"]
        `,
    );
    assert.deepEqual(
        t.tunnels[0].ends.map((e) => [e.gwip, e.routes]),
        [
            ["fd00:10:10:10::1", []],
            ["fd00:10:10:10::2", ["fd00:20::/64", "2001:db8::1/128"]],
        ],
    );
    assert.equal(t.tunnels[0].family, 6);
});

test("aws hosts have no address; fou is true", () => {
    const t = parse(TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n", AWS);
    assert.deepEqual(t.hosts, [
        { name: "k1", fou: true },
        { name: "k2", fou: true },
    ]);
    // No underlay on aws: a pool the local bridge would overlap is fine.
    parse(TWO_HOSTS + "gwipPool: 198.51.100.0/24\ntunnels:\n  - hosts: [k1, k2]\n", AWS);
});

test("defaults apply to every tunnel a tunnel's own value overrides; fou: false and mtu pass through", () => {
    const t = parse(y`
        hosts:
          - name: k1
            fou: false
          - name: k2
            address: 198.51.100.20
          - name: k3
        defaults:
          encap: gue
          port: 6000
          mtu: 1400
          ttl: 64
        tunnels:
          - hosts: [k1, k2]
          - hosts: [k3, k1]
            port: 6001
            mtu: 1300
            csum: true
    `);
    assert.deepEqual(
        t.hosts.map((h) => [h.name, h.address, h.fou]),
        [
            ["k1", "198.51.100.151", false],
            ["k2", "198.51.100.20", true],
            ["k3", "198.51.100.153", true],
        ],
    );
    assert.deepEqual(
        t.tunnels.map((x) => [x.name, x.encap, x.port, x.mtu, x.ttl, x.csum]),
        [
            ["k1-k2", "gue", 6000, 1400, 64, false],
            ["k3-k1", "gue", 6001, 1300, 64, true],
        ],
    );
});

test("tunnels with the same port and binding share one port; ports come in host order then port", () => {
    const t = parse(y`
        hosts:
          - name: k2
          - name: k1
          - name: k3
        tunnels:
          - hosts: [k1, k3]
          - hosts: [k1, k2]
            persist: true
          - hosts: [k1, k2]
            name: k1-k2-gre
            protocol: gre
            encap: gue
            port: 5000
            interfaces: [gre2, gre1]
    `);
    assert.deepEqual(
        t.ports.map((p) => [p.host, p.port, p.encap, p.ipproto, p.persist, p.tunnels]),
        [
            ["k2", 5000, "gue", undefined, false, ["k1-k2-gre"]],
            ["k2", 5555, "fou", 4, true, ["k1-k2"]],
            ["k1", 5000, "gue", undefined, false, ["k1-k2-gre"]],
            ["k1", 5555, "fou", 4, true, ["k1-k3", "k1-k2"]],
            ["k3", 5555, "fou", 4, false, ["k1-k3"]],
        ],
    );
    assert.equal("ipproto" in t.ports[0], false, "a GUE port has no ipproto");
    assert.deepEqual(t.tunnels[2].ends.map((e) => e.ifname), ["gre2", "gre1"]);
    assert.equal(t.tunnels[2].ipproto, 47);
});

// ---------------------------------------------------------------------------------------------
// Errors: each case is one file with one problem of interest, asserted with its position.

interface Case {
    readonly rule: string;
    readonly text: string;
    /** `t.yaml:line:col: path` */
    readonly at: string;
    readonly says: RegExp;
    readonly options?: TopologyOptions;
}

const T12 = "tunnels:\n  - hosts: [k1, k2]\n";

const CASES: Case[] = [
    // 1. YAML itself
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
    // 2. Top level and unknown keys
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
        says: /^unknown key \(did you mean address\?\); host keys are name, address, fou$/,
    },
    {
        rule: "unknown defaults key",
        text: TWO_HOSTS + "defaults:\n  prot: gre\n" + T12,
        at: "t.yaml:5:3: defaults.prot",
        says: /^unknown key \(did you mean protocol\?\); defaults keys are protocol, encap, port, sport, csum, mtu, ttl, persist$/,
    },
    // 3. hosts
    {
        rule: "hosts is required",
        text: T12,
        at: "t.yaml:1:1: hosts",
        says: /^required: a list of at least 2 hosts/,
    },
    {
        rule: "hosts lists at least two",
        text: "hosts:\n  - name: k1\n" + T12,
        at: "t.yaml:2:3: hosts",
        says: /^must list at least 2 hosts, since a tunnel joins two \(got 1\)$/,
    },
    {
        rule: "a host is a mapping",
        text: "hosts: [k1, k2]\n" + T12,
        at: "t.yaml:1:9: hosts[0]",
        says: /^must be a mapping like \{name: k1\} \(got "k1"\)$/,
    },
    {
        rule: "host name is required",
        text: "hosts:\n  - name: k1\n  - fou: true\n" + T12,
        at: "t.yaml:3:5: hosts[1].name",
        says: /^required: the host's name, like k1$/,
    },
    {
        rule: "host name syntax (checkHostName)",
        text: "hosts:\n  - name: K1\n  - name: k2\n" + T12,
        at: "t.yaml:2:11: hosts[0].name",
        says: /^must be 1-12 characters of a-z, 0-9 and '-', starting with a letter \(got "K1"\)$/,
    },
    {
        rule: "host name too long for fto<peer>",
        text: "hosts:\n  - name: averyverylongname\n  - name: k2\n",
        at: "t.yaml:2:11: hosts[0].name",
        says: /^must be 1-12 characters/,
    },
    {
        rule: "duplicate host name",
        text: "hosts:\n  - name: k1\n  - name: k1\n" + T12,
        at: "t.yaml:3:11: hosts[1].name",
        says: /^host name k1 is already used by hosts\[0\] \(line 2\)$/,
    },
    {
        rule: "address must be IPv4",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.300\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^must be an IPv4 address like 198.51.100.151 \(got "198.51.100.300"\)$/,
    },
    {
        rule: "address inside the underlay network",
        text: "hosts:\n  - name: k1\n    address: 203.0.113.5\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^203.0.113.5 is outside the underlay network 198.51.100.0\/24 \(this machine is 198.51.100.1\)$/,
    },
    {
        rule: "address is not the network address",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.0\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^198.51.100.0 is the address of the underlay network 198.51.100.0\/24 itself/,
    },
    {
        rule: "address is not the gateway's",
        text: "hosts:\n  - name: k1\n  - name: k2\n    address: 198.51.100.1\n" + T12,
        at: "t.yaml:4:14: hosts[1].address",
        says: /^198.51.100.1 is the gateway's own address \(this machine on the VM bridge\)$/,
    },
    {
        rule: "address is not the broadcast",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.255\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^198.51.100.255 is the broadcast address of the underlay network 198.51.100.0\/24$/,
    },
    {
        rule: "an explicit address equal to another host's defaulted one",
        text: "hosts:\n  - name: k1\n  - name: k2\n    address: 198.51.100.151\n" + T12,
        at: "t.yaml:4:14: hosts[1].address",
        says: /^198.51.100.151 is already the address of k1 \(line 2\); each host needs its own$/,
    },
    {
        rule: "a defaulted address equal to an explicit one",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.152\n  - name: k2\n" + T12,
        at: "t.yaml:4:5: hosts[1].address",
        says: /^the default address 198.51.100.152 \(the underlay network \+ 152\) is already the address of k1 \(line 3\); each host needs its own; set address$/,
    },
    {
        rule: "a defaulted address outside a small underlay network",
        text: TWO_HOSTS + T12,
        options: { kind: "local", underlay: "198.51.100.1/25" },
        at: "t.yaml:2:5: hosts[0].address",
        says: /^the default address 198.51.100.151 \(the underlay network \+ 151\) is outside the underlay network 198.51.100.0\/25 .*; set address$/,
    },
    {
        rule: "address on aws",
        text: "hosts:\n  - name: k1\n    address: 10.0.0.5\n  - name: k2\n" + T12,
        options: AWS,
        at: "t.yaml:3:5: hosts[0].address",
        says: /^not allowed for aws hosts: EC2 assigns the addresses$/,
    },
    {
        rule: "fou on aws",
        text: "hosts:\n  - name: k1\n  - name: k2\n    fou: false\n" + T12,
        options: AWS,
        at: "t.yaml:4:5: hosts[1].fou",
        says: /^not allowed for aws hosts/,
    },
    {
        rule: "fou must be a YAML boolean",
        text: "hosts:\n  - name: k1\n    fou: no\n  - name: k2\n" + T12,
        at: "t.yaml:3:10: hosts[0].fou",
        says: /^must be true or false \(got "no"; YAML 1.2 reads no as a string\)$/,
    },
    // 4. tunnels and their hosts
    {
        rule: "tunnels is required",
        text: TWO_HOSTS,
        at: "t.yaml:1:1: tunnels",
        says: /^required: a list of at least 1 tunnel/,
    },
    {
        rule: "tunnels is not empty",
        text: TWO_HOSTS + "tunnels: []\n",
        at: "t.yaml:4:10: tunnels",
        says: /^must be a non-empty list of tunnels, each like \{hosts: \[k1, k2\]\} \(got a list of 0\)$/,
    },
    {
        rule: "a tunnel's hosts are required",
        text: TWO_HOSTS + "tunnels:\n  - port: 5555\n",
        at: "t.yaml:5:5: tunnels[0].hosts",
        says: /^required: the two hosts the tunnel joins, like \[k1, k2\] \(the hosts are k1, k2\)$/,
    },
    {
        rule: "a tunnel joins two hosts",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1]\n",
        at: "t.yaml:5:12: tunnels[0].hosts",
        says: /^must be a list of the two hosts the tunnel joins, like \[k1, k2\] \(got a list of 1\)$/,
    },
    {
        rule: "unknown host, naming the hosts there are",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k3]\n",
        at: "t.yaml:5:17: tunnels[0].hosts[1]",
        says: /^unknown host "k3"; the hosts are k1, k2$/,
    },
    {
        rule: "a tunnel joins two different hosts",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k2, k2]\n",
        at: "t.yaml:5:12: tunnels[0].hosts",
        says: /^joins k2 to itself; a tunnel joins two different hosts$/,
    },
    // 5. values
    {
        rule: "protocol enum",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: ip6ip6\n",
        at: "t.yaml:6:15: tunnels[0].protocol",
        says: /^must be one of ipip, sit, gre \(got "ip6ip6"\)$/,
    },
    {
        rule: "encap enum",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    encap: FOU\n",
        at: "t.yaml:6:12: tunnels[0].encap",
        says: /^must be one of fou, gue \(got "FOU"\)$/,
    },
    {
        rule: "port range",
        text: "hosts:\n  - name: k1\n  - name: k2\n  - name: k3\n" + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k3]\n    protocol: gre\n    port: 70000\n",
        at: "t.yaml:9:11: tunnels[1].port",
        says: /^must be a UDP port number from 1 to 65535 \(got 70000\)$/,
    },
    {
        rule: "port is a number, not a string",
        text: TWO_HOSTS + 'tunnels:\n  - hosts: [k1, k2]\n    port: "5555"\n',
        at: "t.yaml:6:11: tunnels[0].port",
        says: /^must be a UDP port number from 1 to 65535 \(got "5555"\)$/,
    },
    {
        rule: "sport is auto or a port",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    sport: fixed\n",
        at: "t.yaml:6:12: tunnels[0].sport",
        says: /^must be "auto" or a UDP port number from 1 to 65535 \(got "fixed"\)$/,
    },
    {
        rule: "csum must be a YAML boolean",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    csum: yes\n",
        at: "t.yaml:6:11: tunnels[0].csum",
        says: /^must be true or false \(got "yes"; YAML 1.2 reads yes as a string\)$/,
    },
    {
        rule: "persist must be a YAML boolean",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    persist: 1\n",
        at: "t.yaml:6:14: tunnels[0].persist",
        says: /^must be true or false \(got 1\)$/,
    },
    {
        rule: "mtu range",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    mtu: 40\n",
        at: "t.yaml:6:10: tunnels[0].mtu",
        says: /^must be an integer from 68 to 65535 \(got 40\)$/,
    },
    {
        rule: "mtu of a sit tunnel is at least 1280",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    mtu: 1000\n",
        at: "t.yaml:7:10: tunnels[0].mtu",
        says: /^1000 is below 1280, the smallest MTU IPv6 allows/,
    },
    {
        rule: "mtu from defaults checked against a sit tunnel, pointing at the tunnel",
        text: TWO_HOSTS + "defaults:\n  mtu: 1000\ntunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n",
        at: "t.yaml:7:5: tunnels[0].mtu",
        says: /^1000 \(from defaults.mtu, line 5\) is below 1280/,
    },
    {
        rule: "ttl range",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    ttl: 0\n",
        at: "t.yaml:6:10: tunnels[0].ttl",
        says: /^must be an integer from 1 to 255 \(got 0\)$/,
    },
    {
        rule: "a bad value in defaults",
        text: TWO_HOSTS + "defaults:\n  port: 0\n" + T12,
        at: "t.yaml:5:9: defaults.port",
        says: /^must be a UDP port number from 1 to 65535 \(got 0\)$/,
    },
    // 6. GWIPs and pools
    {
        rule: "gwips: exactly two",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1]\n",
        at: "t.yaml:6:12: tunnels[0].gwips",
        says: /^must be a list of two GWIPs, one per host in the order of hosts, like \[10.10.10.1, 10.10.10.2\] \(got a list of 1\)$/,
    },
    {
        rule: "gwips of a sit tunnel are IPv6",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [fd00::1, 10.10.10.2]\n",
        at: "t.yaml:7:22: tunnels[0].gwips[1]",
        says: /^a sit tunnel carries IPv6, so its GWIPs are IPv6 addresses like fd00:10:10:10::1 \(got 10.10.10.2\)$/,
    },
    {
        rule: "gwips of an ipip tunnel are IPv4",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [fd00::1, 10.10.10.2]\n",
        at: "t.yaml:6:13: tunnels[0].gwips[0]",
        says: /^an ipip tunnel carries IPv4, so its GWIPs are IPv4 addresses/,
    },
    {
        rule: "a GWIP is an address",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 10.10.10.256]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^must be an IPv4 address \(got "10.10.10.256"\)$/,
    },
    {
        rule: "a GWIP is not loopback",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [127.0.0.2, 10.10.10.2]\n",
        at: "t.yaml:6:13: tunnels[0].gwips[0]",
        says: /^127.0.0.2 is in 127.0.0.0\/8 \(loopback\); a GWIP must be a unicast address$/,
    },
    {
        rule: "a GWIP is not multicast",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 239.1.1.1]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^239.1.1.1 is in 224.0.0.0\/4 \(multicast\)/,
    },
    {
        rule: "a GWIP is not 0.0.0.0",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [0.0.0.0, 10.10.10.2]\n",
        at: "t.yaml:6:13: tunnels[0].gwips[0]",
        says: /^0.0.0.0 is in 0.0.0.0\/8/,
    },
    {
        rule: "an IPv6 GWIP is not link-local",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [fe80::1, fd00::2]\n",
        at: "t.yaml:7:13: tunnels[0].gwips[0]",
        says: /^fe80::1 is in fe80::\/10 \(link-local\); a GWIP must be a unicast address$/,
    },
    {
        rule: "an IPv6 GWIP is not ::1 (written long)",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [fd00::1, \"0:0:0:0:0:0:0:1\"]\n",
        at: "t.yaml:7:22: tunnels[0].gwips[1]",
        says: /^::1 is the loopback address ::1/,
    },
    {
        rule: "an IPv6 GWIP is not multicast",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [ff02::1, fd00::2]\n",
        at: "t.yaml:7:13: tunnels[0].gwips[0]",
        says: /^ff02::1 is in ff00::\/8 \(multicast\)/,
    },
    {
        rule: "the two ends' GWIPs differ",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 10.10.10.1]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^10.10.10.1 is also the GWIP of the other end \(gwips\[0\]\); each end needs its own$/,
    },
    {
        rule: "a GWIP is used once in the file, naming where",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                gwips: [10.10.10.1, 10.10.10.2]
              - hosts: [k3, k1]
                gwips: [10.10.10.3, 10.10.10.1]
        `,
        at: "t.yaml:9:25: tunnels[1].gwips[1]",
        says: /^GWIP 10.10.10.1 is already the GWIP of k1 in tunnel k1-k2 \(line 7\); each GWIP may be used once in the file$/,
    },
    {
        rule: "IPv6 GWIPs collide whatever their spelling",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                protocol: sit
                gwips: [fd00::1, FD00:10::2]
              - hosts: [k1, k3]
                protocol: sit
                gwips: ["fd00:10:0:0:0:0:0:2", fd00::3]
        `,
        at: "t.yaml:11:13: tunnels[1].gwips[0]",
        says: /^GWIP fd00:10::2 is already the GWIP of k2 in tunnel k1-k2 \(line 8\)/,
    },
    {
        rule: "a GWIP in the local underlay network",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 198.51.100.7]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^198.51.100.7 lies in the underlay network 198.51.100.0\/24 .*; GWIPs must be outside it$/,
    },
    {
        rule: "gwipPool must be an IPv4 prefix",
        text: TWO_HOSTS + "gwipPool: fd00::/64\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^must be an IPv4 prefix like 10.10.10.0\/24; IPv6 GWIPs \(sit tunnels\) come from gwipPool6 \(got "fd00::\/64"\)$/,
    },
    {
        rule: "gwipPool6 must be an IPv6 prefix",
        text: TWO_HOSTS + "gwipPool6: 10.10.10\n" + T12,
        at: "t.yaml:4:12: gwipPool6",
        says: /^must be an IPv6 prefix like fd00:10:10:10::\/64 \(got "10.10.10"\)$/,
    },
    {
        rule: "gwipPool without host bits",
        text: TWO_HOSTS + "gwipPool: 10.10.10.1/24\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^10.10.10.1\/24 has host bits set; the network is 10.10.10.0\/24$/,
    },
    {
        rule: "gwipPool with room for a tunnel",
        text: TWO_HOSTS + "gwipPool: 10.10.10.0/31\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^10.10.10.0\/31 has room for fewer than the 2 GWIPs of one tunnel; use a prefix of length 30 or shorter$/,
    },
    {
        rule: "gwipPool6 not multicast",
        text: TWO_HOSTS + "gwipPool6: ff00::/64\n" + T12,
        at: "t.yaml:4:12: gwipPool6",
        says: /^ff00::\/64 overlaps addresses that are in ff00::\/8 \(multicast\); GWIPs must be unicast addresses$/,
    },
    {
        rule: "an exhausted pool names the end that got nothing",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            gwipPool: 10.10.10.0/30
            tunnels:
              - hosts: [k1, k2]
              - hosts: [k1, k3]
        `,
        at: "t.yaml:8:5: tunnels[1].gwips",
        says: /^gwipPool 10.10.10.0\/30 has no free address left for the GWIP of k1; give gwips or use a larger pool$/,
    },
    {
        rule: "an explicit gwipPool overlapping the local underlay",
        text: TWO_HOSTS + "gwipPool: 198.51.100.128/25\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^198.51.100.128\/25 overlaps the underlay network 198.51.100.0\/24; GWIPs must lie outside it$/,
    },
    {
        rule: "the default gwipPool overlapping the local underlay, when used",
        text: TWO_HOSTS + T12,
        options: { kind: "local", underlay: "10.10.0.1/16" },
        at: "t.yaml:1:1: gwipPool",
        says: /^the default pool 10.10.10.0\/24 overlaps the underlay network 10.10.0.0\/16; GWIPs must lie outside it: set gwipPool$/,
    },
    // 7. interfaces
    {
        rule: "interfaces: exactly two",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: ftok2\n",
        at: "t.yaml:6:17: tunnels[0].interfaces",
        says: /^must be a list of two interface names, one per host in the order of hosts, like \[ftok2, ftok1\] \(got "ftok2"\)$/,
    },
    {
        rule: "an interface name is at most 15 characters",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: [tunnel-to-k2-fou, ftok1]\n",
        at: "t.yaml:6:18: tunnels[0].interfaces[0]",
        says: /^"tunnel-to-k2-fou" is 16 characters; interface names have at most 15$/,
    },
    {
        rule: "an interface name has no odd characters",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: [ftok2, \"fto k1\"]\n",
        at: "t.yaml:6:25: tunnels[0].interfaces[1]",
        says: /^"fto k1" may only contain letters, digits/,
    },
    {
        rule: "an interface is not lo",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: [lo, ftok1]\n",
        at: "t.yaml:6:18: tunnels[0].interfaces[0]",
        says: /^lo is the loopback interface; choose another name$/,
    },
    {
        rule: "two tunnels defaulting to the same interface on a host, with a hint",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k2]\n    name: k1-k2-gre\n    protocol: gre\n    port: 5556\n",
        at: "t.yaml:6:5: tunnels[1].interfaces",
        says: /^the default interface name ftok2 on k1 is already used by tunnel k1-k2 \(line 5\); set interfaces to give this tunnel other names$/,
    },
    {
        rule: "an explicit interface already used on that host",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
              - hosts: [k3, k1]
                interfaces: [ftok1, ftok2]
        `,
        at: "t.yaml:8:25: tunnels[1].interfaces[1]",
        says: /^interface ftok2 on k1 is already used by tunnel k1-k2 \(line 6\); set interfaces/,
    },
    // 8. routes
    {
        rule: "routes are keyed by the tunnel's hosts",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                routes:
                  k3: [10.20.3.0/24]
        `,
        at: "t.yaml:8:7: tunnels[0].routes.k3",
        says: /^k3 is not a host of this tunnel; routes are keyed by its hosts k1, k2$/,
    },
    {
        rule: "routes of a host are a list",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: 10.20.2.0/24\n",
        at: "t.yaml:7:11: tunnels[0].routes.k1",
        says: /^must be a list of prefixes that k1 routes into the tunnel, like \[10.20.2.0\/24\] \(got "10.20.2.0\/24"\)$/,
    },
    {
        rule: "a route with host bits names the network",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: [10.20.2.1/24]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k1[0]",
        says: /^10.20.2.1\/24 has host bits set; the network is 10.20.2.0\/24$/,
    },
    {
        rule: "a route of the tunnel's family (sit: IPv6)",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    routes:\n      k2: [10.20.1.0/24]\n",
        at: "t.yaml:8:12: tunnels[0].routes.k2[0]",
        says: /^must be an IPv6 prefix like fd00:2::\/64 \(got "10.20.1.0\/24"\)$/,
    },
    {
        rule: "no default route",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: [0.0.0.0/0]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k1[0]",
        says: /^0.0.0.0\/0 is a default route; sending everything into the tunnel would cut the SSH path to the hosts$/,
    },
    {
        rule: "no IPv6 default route",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    routes:\n      k1: [\"::/0\"]\n",
        at: "t.yaml:8:12: tunnels[0].routes.k1[0]",
        says: /^::\/0 is a default route/,
    },
    {
        rule: "a route overlapping the local underlay",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k2: [198.51.0.0/16]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k2[0]",
        says: /^198.51.0.0\/16 overlaps the underlay network 198.51.100.0\/24 .*; routing it into the tunnel would cut the SSH path to the VMs$/,
    },
    {
        rule: "a route covering a GWIP of the tunnel",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: [10.10.10.0/30]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k1[0]",
        says: /^10.10.10.0\/30 contains 10.10.10.1 \(k1\) and 10.10.10.2 \(k2\), the GWIPs of this tunnel; /,
    },
    {
        rule: "the same prefix routed twice from one host",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                routes:
                  k1: [10.20.0.0/16]
              - hosts: [k1, k3]
                routes:
                  k1: [10.20.0.0/16]
        `,
        at: "t.yaml:11:12: tunnels[1].routes.k1[0]",
        says: /^k1 already routes 10.20.0.0\/16 into tunnel k1-k2 \(line 8\); a prefix can go through one tunnel only$/,
    },
    // 9. tunnel names
    {
        rule: "tunnel name syntax",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    name: K1_K2\n",
        at: "t.yaml:6:11: tunnels[0].name",
        says: /^must be 1-31 characters of a-z, 0-9 and '-', starting with a letter \(got "K1_K2"\)$/,
    },
    {
        rule: "duplicate explicit tunnel names",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                name: main
              - hosts: [k1, k3]
                name: main
        `,
        at: "t.yaml:9:11: tunnels[1].name",
        says: /^tunnel name main is already used by tunnels\[0\] \(line 6\)$/,
    },
    {
        rule: "two unnamed tunnels between the same hosts get the same default name, with a hint",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k2]\n    protocol: sit\n    port: 5556\n    interfaces: [sit2, sit1]\n",
        at: "t.yaml:6:5: tunnels[1].name",
        says: /^the default name k1-k2 is already the name of tunnels\[0\] \(line 5\); set name to tell these tunnels apart$/,
    },
    // 10. one tunnel per protocol and pair
    {
        rule: "two tunnels of one protocol between the same hosts, in either order",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k2, k1]\n    port: 5556\n",
        at: "t.yaml:6:12: tunnels[1].hosts",
        says: /^k2 and k1 are already joined by ipip tunnel k1-k2 \(line 5\); the kernel tells ipip tunnels apart only by local and remote address/,
    },
    // 11. receive ports
    {
        rule: "a FOU port delivers one inner protocol",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
              - hosts: [k1, k3]
                protocol: sit
        `,
        at: "t.yaml:7:5: tunnels[1].port",
        says: /^port 5555 on k1 is already a FOU port delivering ipproto 4 \(ipip\) for tunnel k1-k2 \(line 6\), but this tunnel needs a FOU port delivering ipproto 41 \(sit\); .*use another port or encap gue$/,
    },
    {
        rule: "a FOU port cannot be a GUE port",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            defaults:
              port: 6000
            tunnels:
              - hosts: [k1, k2]
                encap: gue
              - hosts: [k3, k2]
        `,
        at: "t.yaml:10:5: tunnels[1].port",
        says: /^port 6000 \(from defaults.port, line 6\) on k2 is already a GUE port for tunnel k1-k2 \(line 8\), but this tunnel needs a FOU port delivering ipproto 4 \(ipip\)/,
    },
    {
        rule: "a fixed sport is not a receive port of the tunnel's hosts",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    sport: 5555\n",
        at: "t.yaml:6:12: tunnels[0].sport",
        says: /^5555 is also a receive port on k1 \(tunnel k1-k2, line 5\) and on k2 \(tunnel k1-k2, line 5\); a fixed sport must differ from every receive port of the tunnel's hosts$/,
    },
    // 12. defaults
    {
        rule: "defaults cannot set per-tunnel keys",
        text: TWO_HOSTS + "defaults:\n  gwips: [10.10.10.1, 10.10.10.2]\n" + T12,
        at: "t.yaml:5:3: defaults.gwips",
        says: /^gwips is set per tunnel and cannot have a default; defaults may set protocol, encap, port, sport, csum, mtu, ttl, persist$/,
    },
    {
        rule: "defaults is a mapping",
        text: TWO_HOSTS + "defaults: [port, 5555]\n" + T12,
        at: "t.yaml:4:11: defaults",
        says: /^must be a mapping of tunnel values, like \{port: 5555\} \(got a list of 2\)$/,
    },
];

for (const c of CASES) {
    test(`rejects: ${c.rule}`, () => {
        rejects(c.text, c.at, c.says, c.options);
    });
}

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

test("a second tunnel of the same protocol and pair is reported once, as such", () => {
    // Its default name and interfaces repeat the first tunnel's too, but renaming would not help.
    const found = problems(TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k2]\n    port: 5556\n");
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0], /^t\.yaml:6:12: tunnels\[1\]\.hosts: k1 and k2 are already joined by ipip tunnel k1-k2 \(line 5\)/);
});

test("tunnels naming hosts are not reported when the hosts section itself is wrong", () => {
    assert.deepEqual(problems("hosts: k1\n" + T12), [
        "t.yaml:1:8: hosts: must be a list of at least 2 hosts, each like {name: k1} (got \"k1\")",
    ]);
});

test("a local topology without an underlay option is on the guide's bridge", () => {
    const t = parse(TWO_HOSTS + T12, { kind: "local" });
    assert.deepEqual(
        t.hosts.map((h) => h.address),
        ["198.51.100.151", "198.51.100.152"],
    );
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
