/**
 * External hosts: far ends the stack does not manage (`{name: r1, external: {address: …}}`). The
 * model keeps them apart from the managed hosts (`externalHosts`) and out of `ports`; every rule
 * about them is reported at its node, like any other topology error.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AWS, Case, parse, problems, rejectsEach } from "./topologyFixtures";
import { K1_KEY } from "./sshFixtures";
import type { TopologyOptions } from "../../topology";

const SSH: TopologyOptions = { kind: "ssh" };

/** k1 (managed) and r1 (external at .77), joined by one tunnel. */
const GUIDE_LIKE = ["hosts:", "  - name: k1", "  - name: r1", "    external: {address: 198.51.100.77}", "tunnels:", "  - hosts: [k1, r1]", ""].join("\n");

/** k1, k2 and the external host r1 with EXTRA lines in its entry, then TUNNELS. */
function withR1(extra: string[], tunnels: string[] = ["  - hosts: [k1, r1]"]): string {
    return ["hosts:", "  - name: k1", "  - name: k2", "  - name: r1", ...extra, "tunnels:", ...tunnels, ""].join("\n");
}

test("an external host is a far end: not among the hosts, its tunnel built as any other, its port not opened", () => {
    const t = parse(GUIDE_LIKE);
    assert.deepEqual(t.hosts.map((h) => h.name), ["k1"]);
    assert.deepEqual(t.externalHosts, [{ name: "r1", address: "198.51.100.77" }]);
    assert.deepEqual(t.tunnels[0].ends, [
        { host: "k1", gwip: "10.10.10.1", ifname: "ftor1", routes: [] },
        { host: "r1", gwip: "10.10.10.2", ifname: "ftok1", routes: [] },
    ]);
    assert.deepEqual(t.ports, [{ host: "k1", port: 5555, encap: "fou", ipproto: 4, persist: false, tunnels: ["k1-r1"] }]);
});

test("an external host may be end a, route prefixes, and take any value but csum", () => {
    const t = parse(
        withR1(
            ["    external: {address: 203.0.113.9}"],
            ["  - hosts: [r1, k2]", "    protocol: gre", "    encap: gue", "    port: 5600", "    sport: 5601", "    mtu: 1400", "    ttl: 64", "    persist: true", "    routes: {r1: [10.30.0.0/16], k2: [10.20.0.0/16]}"],
        ),
    );
    const [tunnel] = t.tunnels;
    assert.equal(tunnel.name, "r1-k2");
    assert.deepEqual(tunnel.ends.map((e) => [e.host, e.ifname, e.routes]), [
        ["r1", "ftok2", ["10.30.0.0/16"]],
        ["k2", "ftor1", ["10.20.0.0/16"]],
    ]);
    assert.deepEqual(t.ports.map((p) => p.host), ["k2"]);
    // k1 has no tunnel: a host of the stack all the same (it gets no steps).
    assert.deepEqual(t.hosts.map((h) => h.name), ["k1", "k2"]);
});

test("on ssh stacks too: the far end beside hosts the stack logs in to", () => {
    const text = ["hosts:", "  - name: k1", `    ssh: {address: 198.51.100.161, hostKey: ${K1_KEY}}`, "  - name: r1", "    external: {address: 198.51.100.77}", "tunnels:", "  - hosts: [k1, r1]", ""].join("\n");
    const t = parse(text, SSH);
    assert.deepEqual(t.hosts.map((h) => [h.name, h.address]), [["k1", "198.51.100.161"]]);
    assert.deepEqual(t.externalHosts, [{ name: "r1", address: "198.51.100.77" }]);
});

test("this machine, the local stacks' gateway, may be a far end", () => {
    const t = parse(GUIDE_LIKE.replace("198.51.100.77", "198.51.100.1"));
    assert.deepEqual(t.externalHosts, [{ name: "r1", address: "198.51.100.1" }]);
});

test("a far end's tunnels share its port as a managed host's do, and are held to the same bindings", () => {
    const found = problems(withR1(["    external: {address: 198.51.100.77}"], ["  - hosts: [k1, r1]", "  - hosts: [k2, r1]", "    protocol: sit"]));
    assert.deepEqual(found, [
        "t.yaml:8:5: tunnels[1].port: port 5555 on r1 is already a FOU port delivering ipproto 4 (ipip) for tunnel k1-r1 (line 7), but this tunnel needs a FOU port delivering ipproto 41 (sit); a FOU port delivers one inner protocol and cannot also be a GUE port: use another port or encap gue",
    ]);
    const t = parse(withR1(["    external: {address: 198.51.100.77}"], ["  - hosts: [k1, r1]", "  - hosts: [k2, r1]"]));
    assert.deepEqual(t.tunnels.map((x) => x.ends[1].ifname), ["ftok1", "ftok2"]);
});

const R1 = "    external: {address: 198.51.100.77}";
/** A local stack whose bridge is elsewhere: the far end's address is then no address of the bridge. */
const ELSEWHERE: TopologyOptions = { kind: "local", underlay: "192.0.2.1/24" };

const EXTERNAL_CASES: Case[] = [
    {
        rule: "an external host has no ssh block",
        text: withR1(["    ssh: {address: 198.51.100.77}", R1]),
        at: "t.yaml:5:5: hosts[2].ssh",
        says: /^not allowed for an external host: the stack never logs in to an external host; an external host has only name and external$/,
        options: SSH,
    },
    {
        rule: "an external host has no kernel block",
        text: withR1([R1, "    kernel: {upgrade: true}"]),
        at: "t.yaml:6:5: hosts[2].kernel",
        says: /^not allowed for an external host: the stack never logs in to an external host, so it cannot upgrade its kernel;/,
    },
    {
        rule: "an external host's address is external.address, not address",
        text: withR1(["    address: 198.51.100.77", R1]),
        at: "t.yaml:5:5: hosts[2].address",
        says: /^not allowed for an external host: an external host's underlay address is external\.address;/,
    },
    {
        rule: "an external host has no underlayAddress",
        text: withR1([R1, "    underlayAddress: 198.51.100.78"]),
        at: "t.yaml:6:5: hosts[2].underlayAddress",
        says: /^not allowed for an external host: an external host's underlay address is external\.address;/,
    },
    {
        rule: "an external host has no device",
        text: withR1([R1, "    device: eth1"]),
        at: "t.yaml:6:5: hosts[2].device",
        says: /^not allowed for an external host: the far end's device is its operator's choice/,
    },
    {
        rule: "an external host has no fou key",
        text: withR1([R1, "    fou: false"]),
        at: "t.yaml:6:5: hosts[2].fou",
        says: /^not allowed for an external host: only local VMs can be booted with fou made unusable;/,
    },
    {
        rule: "an unknown key of an external host",
        text: withR1([R1, "    extrnal: 1"]),
        at: "t.yaml:6:5: hosts[2].extrnal",
        says: /^unknown key \(did you mean external\?\); external host keys are name, external$/,
    },
    {
        rule: "external is a mapping",
        text: withR1(["    external: 198.51.100.77"]),
        at: "t.yaml:5:15: hosts[2].external",
        says: /^must be a mapping like \{address: 198\.51\.100\.77\}: the far end's underlay address \(got "198\.51\.100\.77"\)$/,
    },
    {
        rule: "external.address is required",
        text: withR1(["    external: {}"]),
        at: "t.yaml:5:15: hosts[2].external.address",
        says: /^required: the far end's underlay address, which its tunnels are sent to/,
    },
    {
        rule: "an unknown key of external",
        text: withR1(["    external: {address: 198.51.100.77, port: 22}"]),
        at: "t.yaml:5:40: hosts[2].external.port",
        says: /^unknown key; external keys are address$/,
    },
    {
        rule: "external.address is an IP address",
        text: withR1(["    external: {address: r1.example.net}"]),
        at: "t.yaml:5:25: hosts[2].external.address",
        says: /^must be an IPv4 or IPv6 address like 198\.51\.100\.77 or 2001:db8::77 \(got "r1\.example\.net"\)$/,
    },
    {
        rule: "external.address of IPv6 joined to a host whose underlay is IPv4 (the bridge)",
        text: withR1(["    external: {address: 2001:db8::77}"]),
        at: "t.yaml:7:12: tunnels[0].hosts",
        says: /^joins k1 \(198\.51\.100\.151\) to r1 \(2001:db8::77\): one underlay address is IPv4 and the other IPv6/,
    },
    {
        rule: "external.address is unicast",
        text: withR1(["    external: {address: 224.0.0.5}"]),
        at: "t.yaml:5:25: hosts[2].external.address",
        says: /^224\.0\.0\.5 is .*multicast.*; a far end needs a unicast address$/,
    },
    {
        rule: "external.address is not the bridge network's own address",
        text: withR1(["    external: {address: 198.51.100.0}"]),
        at: "t.yaml:5:25: hosts[2].external.address",
        says: /^198\.51\.100\.0 is the address of the underlay network 198\.51\.100\.0\/24 itself; a far end needs a host address$/,
    },
    {
        rule: "external.address is not the bridge's broadcast address",
        text: withR1(["    external: {address: 198.51.100.255}"]),
        at: "t.yaml:5:25: hosts[2].external.address",
        says: /^198\.51\.100\.255 is the broadcast address of the underlay network 198\.51\.100\.0\/24$/,
    },
    {
        rule: "external.address is not a managed host's (a local VM's default address)",
        text: withR1(["    external: {address: 198.51.100.152}"]),
        at: "t.yaml:5:25: hosts[2].external.address",
        says: /^198\.51\.100\.152 is already the address of k2, a host the stack manages; a far end is another machine$/,
    },
    {
        rule: "external.address is not an ssh host's SSH address",
        text: [
            "hosts:",
            "  - name: k1",
            `    ssh: {address: 198.51.100.161, hostKey: ${K1_KEY}}`,
            "    underlayAddress: 10.1.0.1",
            "  - name: r1",
            "    external: {address: 198.51.100.161}",
            "tunnels:",
            "  - hosts: [k1, r1]",
            "",
        ].join("\n"),
        at: "t.yaml:6:25: hosts[1].external.address",
        says: /^198\.51\.100\.161 is the SSH address of k1 \(line 2\); a far end is another machine$/,
        options: SSH,
    },
    {
        rule: "two external hosts are two machines",
        text: withR1([R1, "  - name: r2", "    external: {address: 198.51.100.77}"], ["  - hosts: [k1, r1]", "  - hosts: [k1, r2]"]),
        at: "t.yaml:7:25: hosts[3].external.address",
        says: /^198\.51\.100\.77 is already the address of external host r1 \(line 5\); each host needs its own$/,
    },
    {
        rule: "no external hosts on aws stacks",
        text: withR1([R1]),
        at: "t.yaml:5:5: hosts[2].external",
        says: /^not supported on aws stacks: an EC2 instance's underlay address is private and reaches a far end only through NAT;/,
        options: AWS,
    },
    {
        rule: "a tunnel joins at most one external host",
        text: withR1([R1, "  - name: r2", "    external: {address: 198.51.100.78}"], ["  - hosts: [r1, r2]"]),
        at: "t.yaml:9:12: tunnels[0].hosts",
        says: /^joins two external hosts, r1 and r2; the stack builds only the ends on hosts it manages, so one end must be one of those$/,
    },
    {
        rule: "csum cannot apply to an external end",
        text: withR1([R1], ["  - hosts: [k1, r1]", "    csum: true"]),
        at: "t.yaml:8:11: tunnels[0].csum",
        says: /^true cannot apply to external host r1: systemd-networkd has no setting for FOU checksums \(encap-csum\), so the far end's networkd files could not match; leave csum false on tunnels to external hosts$/,
    },
    {
        rule: "csum from defaults cannot apply to an external end (reported at the tunnel)",
        text: ["hosts:", "  - name: k1", "  - name: r1", R1, "defaults: {csum: true}", "tunnels:", "  - hosts: [k1, r1]", ""].join("\n"),
        at: "t.yaml:7:5: tunnels[0].csum",
        says: /^true \(from defaults\.csum, line 5\) cannot apply to external host r1:/,
    },
    {
        rule: "a GWIP is not the far end's address",
        text: withR1([R1], ["  - hosts: [k1, r1]", "    gwips: [10.10.10.1, 198.51.100.77]"]),
        at: "t.yaml:8:25: tunnels[0].gwips[1]",
        says: /^198\.51\.100\.77 is the address of external host r1 \(line 5\); a GWIP must not be a machine's own address$/,
        options: ELSEWHERE,
    },
    {
        rule: "a routed prefix does not cover the far end's address",
        text: withR1([R1], ["  - hosts: [k1, r1]", "    routes: {k1: [203.0.113.0/24]}", "  - hosts: [k2, r1]", "    routes: {k2: [198.51.100.64/26]}"]),
        at: "t.yaml:10:19: tunnels[1].routes.k2[0]",
        says: /^198\.51\.100\.64\/26 contains 198\.51\.100\.77, the address of external host r1 \(line 5\);/,
        options: ELSEWHERE,
    },
];


rejectsEach(EXTERNAL_CASES);
