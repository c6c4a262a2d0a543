/**
 * Tunnels over an IPv6 underlay, as a topology file says them: IPv6 underlay addresses on ssh
 * hosts, local VMs and far ends; mixed families refused; UDP checksums on by default; the plan
 * loads fou6 and the ip6 tunnel modules; a far end's ip lines over IPv6. What is made on the
 * hosts is in ipv6Objects.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Case, parse, rejectsEach } from "./topologyFixtures";
import { K1_KEY, K2_KEY } from "./sshFixtures";
import { farEndSetups } from "../../components/farEnd";
import { planTopology } from "../../components/topologyPlan";
import type { TopologyOptions } from "../../topology";

const SSH: TopologyOptions = { kind: "ssh" };
const A1 = "2001:db8:5155::181";
const A2 = "2001:db8:5155::182";
const A3 = "2001:db8:5155::183";

/** Hosts k1..k3 logging in over IPv4, their underlay IPv6 (k3's UNDERLAY3), then TUNNELS. */
function hosts(tunnels: string[], underlay3 = A3): string {
    return [
        "hosts:",
        "  - name: k1",
        `    ssh: {address: 198.51.100.181, hostKey: ${K1_KEY}}`,
        `    underlayAddress: "${A1}"`,
        "  - name: k2",
        `    ssh: {address: 198.51.100.182, hostKey: ${K2_KEY}}`,
        `    underlayAddress: "${A2}"`,
        "  - name: k3",
        `    ssh: {address: 198.51.100.183, hostKey: ${K1_KEY}}`,
        `    underlayAddress: "${underlay3}"`,
        "tunnels:",
        ...tunnels,
        "",
    ].join("\n");
}

test("IPv6 underlay addresses: the tunnels carry underlay 6, their ports family 6, UDP checksums on unless turned off", () => {
    const t = parse(
        hosts(["  - hosts: [k1, k2]", "  - {hosts: [k1, k3], protocol: sit, encap: gue, port: 5556}", "  - {hosts: [k2, k3], protocol: gre, port: 5557, csum: false}"]),
        SSH,
    );
    assert.deepEqual(t.hosts.map((h) => h.address), [A1, A2, A3]);
    assert.deepEqual(t.tunnels.map((x) => [x.name, x.underlay, x.csum, x.ends.map((e) => e.gwip)]), [
        ["k1-k2", 6, true, ["10.10.10.1", "10.10.10.2"]],
        ["k1-k3", 6, true, ["fd00:10:10:10::1", "fd00:10:10:10::2"]],
        ["k2-k3", 6, false, ["10.10.10.3", "10.10.10.4"]],
    ]);
    assert.deepEqual(t.ports.map((p) => [p.host, p.port, p.encap, p.ipproto, p.family]), [
        ["k1", 5555, "fou", 4, 6],
        ["k1", 5556, "gue", undefined, 6],
        ["k2", 5555, "fou", 4, 6],
        ["k2", 5557, "fou", 47, 6],
        ["k3", 5556, "gue", undefined, 6],
        ["k3", 5557, "fou", 47, 6],
    ]);
    // defaults.csum written in the file holds over IPv6 too.
    const off = parse(hosts(["  - hosts: [k1, k2]"]).replace("tunnels:", "defaults: {csum: false}\ntunnels:"), SSH);
    assert.equal(off.tunnels[0].csum, false);
    // An IPv4 tunnel's spec is as it was: no underlay key, no port family.
    let n = 190;
    const v4 = parse(hosts(["  - hosts: [k1, k2]"]).replaceAll(/underlayAddress: "[^"]+"/g, () => `underlayAddress: 198.51.100.${++n}`), SSH);
    assert.equal("underlay" in v4.tunnels[0], false);
    assert.equal("family" in v4.ports[0], false);
});

test("an ssh host that logs in at an IPv6 address has it as its underlay address unless underlayAddress says otherwise", () => {
    const text = [
        "hosts:",
        `  - {name: k1, ssh: {address: "${A1}", hostKey: ${K1_KEY}}}`,
        `  - {name: k2, ssh: {address: "2001:db8:5155:0::182", hostKey: ${K2_KEY}}}`,
        "tunnels:",
        "  - hosts: [k1, k2]",
        "",
    ].join("\n");
    const t = parse(text, SSH);
    assert.deepEqual(t.hosts.map((h) => h.address), [A1, A2], "written as ip prints it");
    assert.equal(t.tunnels[0].underlay, 6);
});

test("the plan loads fou6 and the ip6 tunnel modules over IPv6", () => {
    const t = parse(hosts(["  - hosts: [k1, k2]", "  - {hosts: [k2, k3], protocol: gre, port: 5557}"]), SSH);
    const plan = planTopology(t);
    assert.deepEqual(plan.hosts.map((h) => [h.host, h.modules]), [
        ["k1", ["fou", "fou6", "ip6_tunnel"]],
        ["k2", ["fou", "fou6", "ip6_tunnel", "ip6_gre"]],
        ["k3", ["fou", "fou6", "ip6_gre"]],
    ]);
    assert.deepEqual(plan.hosts[0].ports.map((p) => p.family), [6]);
});

rejectsEach([
    {
        rule: "a tunnel between an IPv4 and an IPv6 underlay",
        text: hosts(["  - hosts: [k1, k3]"], "198.51.100.193"),
        at: "t.yaml:12:12: tunnels[0].hosts",
        says: /^joins k1 \(2001:db8:5155::181\) to k3 \(198\.51\.100\.193\): one underlay address is IPv6 and the other IPv4; .*both must be of one family/,
        options: SSH,
    },
    {
        rule: "over IPv6, an ipip and a sit tunnel between the same hosts (both ip6tnl)",
        text: hosts(["  - hosts: [k1, k2]", "  - {hosts: [k1, k2], protocol: sit, name: k1-k2-sit}"]),
        at: "t.yaml:13:13: tunnels[1].hosts",
        says: /^k1 and k2 are already joined by ipip tunnel k1-k2 \(line 12\), over IPv6 an ip6tnl link like this sit tunnel; .*one ip6tnl tunnel \(ipip or sit\)$/,
        options: SSH,
    },
    {
        rule: "an IPv6 GWIP on an ipip tunnel over IPv6",
        text: hosts(["  - {hosts: [k1, k2], gwips: [fd00::1, fd00::2]}"]),
        at: "t.yaml:12:31: tunnels[0].gwips[0]",
        says: /^an ipip tunnel carries IPv4, so its GWIPs are IPv4 addresses/,
        options: SSH,
    },
    {
        rule: "a link-local underlay address",
        text: hosts(["  - hosts: [k1, k3]"], "fe80::3"),
        at: "t.yaml:10:22: hosts[2].underlayAddress",
        says: /^fe80::3 is in fe80::\/10 \(link-local\); a tunnel's underlay needs a unicast address$/,
        options: SSH,
    },
    {
        rule: "an IPv6 far end joined to a host with an IPv4 underlay",
        text: ["hosts:", "  - name: k1", "  - name: r1", '    external: {address: "2001:db8::77"}', "tunnels:", "  - hosts: [k1, r1]", ""].join("\n"),
        at: "t.yaml:6:12: tunnels[0].hosts",
        says: /^joins k1 \(198\.51\.100\.151\) to r1 \(2001:db8::77\): one underlay address is IPv4 and the other IPv6/,
    },
    {
        rule: "a far end at a link-local address",
        text: ["hosts:", "  - name: k1", "  - name: r1", '    external: {address: "fe80::77"}', "tunnels:", "  - hosts: [k1, r1]", ""].join("\n"),
        at: "t.yaml:4:25: hosts[1].external.address",
        says: /^fe80::77 is in fe80::\/10 \(link-local\); a far end needs a unicast address$/,
    },
    {
        rule: "an IPv6 far end at a managed host's underlay address",
        text: hosts(["  - hosts: [k1, r1]"]).replace("tunnels:", `  - name: r1\n    external: {address: "${A2}"}\ntunnels:`),
        at: "t.yaml:12:25: hosts[3].external.address",
        says: /^2001:db8:5155::182 is already the address of k2, a host the stack manages; a far end is another machine$/,
        options: SSH,
    },
] satisfies Case[]);

test("a gre and an ipip tunnel may join the same hosts over IPv6 (ip6gre beside ip6tnl)", () => {
    const t = parse(hosts(["  - hosts: [k1, k2]", "  - {hosts: [k1, k2], protocol: gre, port: 5557, name: k1-k2-gre, interfaces: [fgk2, fgk1]}"]), SSH);
    assert.deepEqual(t.tunnels.map((x) => x.name), ["k1-k2", "k1-k2-gre"]);
});

/** Local VMs k1, k2 (IPv4 on the bridge) with IPv6 underlay addresses U1, U2. */
function localHosts(u1: string, u2: string, tunnels = ["  - hosts: [k1, k2]"]): string {
    return ["hosts:", "  - name: k1", `    underlayAddress: "${u1}"`, "  - name: k2", `    underlayAddress: "${u2}"`, "tunnels:", ...tunnels, ""].join("\n");
}

test("local VMs: an IPv6 underlayAddress beside the bridge address carries their tunnels", () => {
    const t = parse(localHosts("2001:db8:5155::151", "2001:db8:5155::152"));
    assert.deepEqual(t.hosts.map((h) => [h.address, h.underlayAddress]), [
        ["198.51.100.151", "2001:db8:5155::151"],
        ["198.51.100.152", "2001:db8:5155::152"],
    ]);
    assert.equal(t.tunnels[0].underlay, 6);
    assert.equal(t.ports[0].family, 6);
});

rejectsEach([
    {
        rule: "a local VM's IPv4 underlayAddress (its address is that)",
        text: localHosts("198.51.100.9", "2001:db8:5155::152"),
        at: "t.yaml:3:22: hosts[0].underlayAddress",
        says: /^198\.51\.100\.9 is IPv4: a local VM's IPv4 underlay address is its address on the bridge; underlayAddress gives it an IPv6 one/,
    },
    {
        rule: "local VMs' IPv6 underlay addresses in two /64s",
        text: localHosts("2001:db8:5155::151", "2001:db8:9999::152"),
        at: "t.yaml:5:22: hosts[1].underlayAddress",
        says: /^2001:db8:9999::152 is outside 2001:db8:5155::\/64, the prefix of k1's \(line 3\): the VMs share one link, the bridge/,
    },
    {
        rule: "two local VMs with one IPv6 underlay address",
        text: localHosts("2001:db8:5155::151", "2001:db8:5155:0::151"),
        at: "t.yaml:5:22: hosts[1].underlayAddress",
        says: /^2001:db8:5155::151 is already the underlay address of k1 \(line 3\); each host needs its own$/,
    },
    {
        rule: "a local VM with an IPv6 underlay joined to one without",
        text: ["hosts:", "  - name: k1", '    underlayAddress: "2001:db8:5155::151"', "  - name: k2", "tunnels:", "  - hosts: [k1, k2]", ""].join("\n"),
        at: "t.yaml:6:12: tunnels[0].hosts",
        says: /^joins k1 \(2001:db8:5155::151\) to k2 \(198\.51\.100\.152\): one underlay address is IPv6 and the other IPv4/,
    },
    {
        rule: "a GWIP that is a local VM's IPv6 underlay address",
        text: localHosts("2001:db8:5155::151", "2001:db8:5155::152", ["  - {hosts: [k1, k2], protocol: sit, gwips: [2001:db8:5155::151, fd00::2]}"]),
        at: "t.yaml:7:46: tunnels[0].gwips[0]",
        says: /^2001:db8:5155::151 is the underlay address of k1 \(line 3\)/,
    },
] satisfies Case[]);

test("a far end over IPv6: ip lines with -6 ports and an ip6tnl link bound to no device, no networkd files (networkd cannot), checksums on", () => {
    const t = parse(hosts(["  - {hosts: [k2, r1], routes: {r1: [10.30.0.0/16]}}"]).replace("tunnels:", '  - name: r1\n    external: {address: "2001:db8:5155::77"}\ntunnels:'), SSH);
    assert.equal(t.tunnels[0].underlay, 6);
    const far = farEndSetups(t, Object.fromEntries(t.hosts.map((h) => [h.name, h.address])));
    assert.deepEqual(far.r1.commands, [
        "modprobe 'fou'",
        "modprobe 'fou6'",
        "modprobe 'ip6_tunnel'",
        "sysctl -w 'net.ipv4.ip_forward=1'",
        "ip fou add port '5555' ipproto '4' -6",
        "ip link add 'ftok2' type ip6tnl mode ipip6 remote '2001:db8:5155::182' local '2001:db8:5155::77' hoplimit '255' encaplimit none encap fou encap-sport auto encap-dport '5555' encap-udp6-csum",
        "ip link set dev 'ftok2' up",
        "sysctl -w 'net/ipv4/conf/ftok2/rp_filter=2'",
        "ip addr add '10.10.10.2/32' dev 'ftok2'",
        "ip route add to '10.10.10.1/32' via '10.10.10.2' dev 'ftok2'",
        "ip route add to '10.30.0.0/16' via '10.10.10.2' dev 'ftok2'",
    ]);
    assert.deepEqual(far.r1.undo, ["ip link del dev 'ftok2'", "ip fou del port '5555' -6"]);
    assert.deepEqual(far.r1.networkd, {});
    assert.match(far.r1.note ?? "", /networkd's ip6tnl and ip6gre netdevs take no FOU or GUE encapsulation/);
    // csum: false is the operator's choice on an IPv6 far end (its ip lines carry the flag).
    const off = parse(hosts(["  - {hosts: [k2, r1], csum: false}"]).replace("tunnels:", '  - name: r1\n    external: {address: "2001:db8:5155::77"}\ntunnels:'), SSH);
    assert.match(farEndSetups(off, Object.fromEntries(off.hosts.map((h) => [h.name, h.address]))).r1.commands.join("\n"), / noencap-udp6-csum$/m);
});

