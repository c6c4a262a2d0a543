/**
 * Tunnels over an IPv6 underlay, on the host and under mocks: the ports are `ip fou add … -6`
 * and told from IPv4 ports of the same number; the links are ip6tnl (ipip6, ip6ip6) and ip6gre,
 * checked against what Debian's 6.1 kernel prints; a topology over IPv6 declares them, loads
 * fou6 and the ip6 tunnel modules; FouTunnel refuses an underlay address of the other family.
 * The topology's rules are in ipv6Underlay.test.ts.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { byArgs, fixtureTests } from "./fakeHost";
import { recorded, root, settle, tunnelHostsOf, valueOf } from "./mocks";
import { parse } from "./topologyFixtures";
import { K1_KEY, K2_KEY } from "./sshFixtures";
import { fouPortObject } from "../../components/fouPort";
import { FouTopology } from "../../components/fouTopology";
import { FouTunnel } from "../../components/fouTunnel";
import { TunnelHost } from "../../components/host";
import { ipipFouLinkObject, LinkSettings } from "../../components/ipipFouLink";
import { FouInputError } from "../../lib/validate";

const A1 = "2001:db8:5155::181";
const A2 = "2001:db8:5155::182";
const A3 = "2001:db8:5155::183";

// ---------------------------------------------------------------------------------------------
// The objects on a host, against what the kernel prints.

const fouShows = (listing: string[]) => ({ ip: byArgs("ip", { "fou show": listing }), hostname: "echo k9" });
const v6port = fouPortObject(5555, 4, "fou", 6);
const v4port = fouPortObject(5555, 4, "fou", 4);
const v6gue = fouPortObject(5556, 4, "gue", 6);

fixtureTests("an IPv6 FOU port (`-6`) is told from the IPv4 port of the same number", [
    { name: "the IPv6 check passes on its line", script: () => v6port.check, fakes: fouShows(["port 5555 ipproto 4", "port 5555 ipproto 4 -6"]), expect: { code: 0, out: "" } },
    { name: "the IPv6 check fails on the IPv4 port alone", script: () => v6port.check, fakes: fouShows(["port 5555 ipproto 4"]), expect: { code: 1, out: "IPv6 FOU port 5555 (ipproto 4) is missing\n" } },
    { name: "the IPv4 check fails on the IPv6 port alone", script: () => v4port.check, fakes: fouShows(["port 5555 ipproto 4 -6"]), expect: { code: 1, out: "FOU port 5555 (ipproto 4) is missing\n" } },
    { name: "IPv6 apply adds it beside the IPv4 port", script: () => v6port.apply, fakes: fouShows(["port 5555 ipproto 4"]), expect: { code: 0, out: "RUN ip fou add port 5555 ipproto 4 -6\n" } },
    { name: "IPv4 apply adds it beside the IPv6 port", script: () => v4port.apply, fakes: fouShows(["port 5555 ipproto 4 -6"]), expect: { code: 0, out: "RUN ip fou add port 5555 ipproto 4\n" } },
    {
        name: "IPv6 apply refuses the IPv6 port bound to gue",
        script: () => v6port.apply,
        fakes: fouShows(["port 5555 gue -6"]),
        expect: { code: 1, out: /UDP port 5555 on k9 is already an IPv6 FOU port bound otherwise/, outLacks: /^RUN ip fou add/m },
    },
    { name: "IPv6 remove deletes only the IPv6 port", script: () => v6port.remove!, fakes: fouShows(["port 5555 ipproto 4", "port 5555 ipproto 4 -6"]), expect: { code: 0, out: "RUN ip fou del port 5555 -6\n" } },
    { name: "IPv6 remove leaves the IPv4 port", script: () => v6port.remove!, fakes: fouShows(["port 5555 ipproto 4"]), expect: { code: 0, out: "" } },
    { name: "an IPv6 gue port's check passes on its line", script: () => v6gue.check, fakes: fouShows(["port 5556 gue -6"]), expect: { code: 0 } },
    { name: "an IPv6 gue port's check fails on the IPv4 gue port", script: () => v6gue.check, fakes: fouShows(["port 5556 gue"]), expect: { code: 1 } },
]);

const IPIP6: LinkSettings = { ifname: "ftok2", remote: A2, local: A1, device: "eth0", port: 5555, ttl: 255, csum: true, underlay: 6 };
const IP6IP6: LinkSettings = { ...IPIP6, ifname: "ftok3", remote: A3, protocol: "sit", encap: "gue", port: 5556 };
const IP6GRE: LinkSettings = { ...IPIP6, ifname: "fgk2", protocol: "gre", port: 5557, csum: undefined, ttl: 64 };

/** `ip -d link show dev X` as Debian's 6.1 prints it: the kind line after the link and flags lines. */
function shown(kind: string, s: LinkSettings, csum6: boolean, encap = `encap ${s.encap ?? "fou"} encap-sport auto encap-dport ${s.port}`): string[] {
    return [
        `4: ${s.ifname}@eth0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1452 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000`,
        `    link/tunnel6 ${s.local} peer ${s.remote} permaddr 9a36:d279:eec3:: promiscuity 0  allmulti 0 minmtu 68 maxmtu 65527 `,
        `    ${kind} remote ${s.remote} local ${s.local} dev eth0 hoplimit ${s.ttl} encaplimit none tclass 0x00 flowlabel 0x00000 ${encap} noencap-csum ${csum6 ? "" : "no"}encap-csum6 noencap-remcsum addrgenmode eui64 numtxqueues 1 numrxqueues 1 `,
    ];
}
const linkHost = (s: LinkSettings, lines: string[]) => ({ ip: byArgs("ip", { [`-d link show dev ${s.ifname}`]: lines }), hostname: "echo k9" });

test("the ip link add lines over IPv6: ip6tnl ipip6 and ip6ip6, ip6gre; hop limit, no encapsulation limit, the IPv6 checksum flag", () => {
    assert.match(
        ipipFouLinkObject(IPIP6).apply,
        /^ip link add 'ftok2' type ip6tnl mode ipip6 remote '2001:db8:5155::182' local '2001:db8:5155::181' hoplimit '255' encaplimit none dev 'eth0' encap fou encap-sport auto encap-dport '5555' encap-udp6-csum$/m,
    );
    assert.match(ipipFouLinkObject(IP6IP6).apply, /^ip link add 'ftok3' type ip6tnl mode ip6ip6 remote '2001:db8:5155::183' .* encap gue encap-sport auto encap-dport '5556' encap-udp6-csum$/m);
    assert.match(ipipFouLinkObject(IP6GRE).apply, /^ip link add 'fgk2' type ip6gre remote '2001:db8:5155::182' local '2001:db8:5155::181' hoplimit '64' encaplimit none dev 'eth0' encap fou .* noencap-udp6-csum$/m);
    // The pair check looks among links of the same type.
    assert.match(ipipFouLinkObject(IPIP6).apply, /ip -o -d link show type 'ip6tnl'/);
});

fixtureTests("an IPv6 link's check reads the kernel's ip6tnl and ip6gre lines", [
    { name: "ipip6 as made passes", script: () => ipipFouLinkObject(IPIP6).check, fakes: linkHost(IPIP6, shown("ip6tnl ipip6", IPIP6, true)), expect: { code: 0, out: "" } },
    { name: "ip6ip6 over GUE as made passes", script: () => ipipFouLinkObject(IP6IP6).check, fakes: linkHost(IP6IP6, shown("ip6tnl ip6ip6", IP6IP6, true)), expect: { code: 0, out: "" } },
    { name: "ip6gre without checksums passes", script: () => ipipFouLinkObject(IP6GRE).check, fakes: linkHost(IP6GRE, shown("ip6gre", IP6GRE, false)), expect: { code: 0, out: "" } },
    {
        name: "ip6ip6 where ipip6 was made fails",
        script: () => ipipFouLinkObject(IPIP6).check,
        fakes: linkHost(IPIP6, shown("ip6tnl ip6ip6", IPIP6, true)),
        expect: { code: 1, out: "link ftok2 is not a ip6tnl ipip6 tunnel\n" },
    },
    {
        name: "checksums turned off by hand fail",
        script: () => ipipFouLinkObject(IPIP6).check,
        fakes: linkHost(IPIP6, shown("ip6tnl ipip6", IPIP6, false)),
        expect: { code: 1, out: "link ftok2 is not encap-csum6 \n" },
    },
    {
        // `ip link set … type ip6tnl …` without the encap words drops the encapsulation.
        name: "the encapsulation lost fails",
        script: () => ipipFouLinkObject(IPIP6).check,
        fakes: linkHost(IPIP6, shown("ip6tnl ipip6", IPIP6, true, "")),
        expect: { code: 1, out: "link ftok2 is not encap fou encap-sport auto encap-dport 5555 \n" },
    },
    {
        name: "the default encapsulation limit fails",
        script: () => ipipFouLinkObject(IPIP6).check,
        fakes: linkHost(IPIP6, shown("ip6tnl ipip6", IPIP6, true).map((l) => l.replace("encaplimit none", "encaplimit 4"))),
        expect: { code: 1, out: /^link ftok2 is not remote 2001:db8:5155::182 local 2001:db8:5155::181 dev eth0 hoplimit 255 encaplimit none \n$/ },
    },
]);

// ---------------------------------------------------------------------------------------------
// Components.

const h1: TunnelHost = { name: "k1", underlayAddress: A1, device: "eth0", connection: { host: "198.51.100.181" } };
const h2: TunnelHost = { name: "k2", underlayAddress: A2, device: "eth0", connection: { host: "198.51.100.182" } };

before(async () => {
    const text = [
        "hosts:",
        `  - {name: k1, ssh: {address: 198.51.100.181, hostKey: ${K1_KEY}}, underlayAddress: "${A1}"}`,
        `  - {name: k2, ssh: {address: 198.51.100.182, hostKey: ${K2_KEY}}, underlayAddress: "${A2}"}`,
        "tunnels:",
        "  - {hosts: [k1, k2], persist: true}",
    ].join("\n");
    const t = parse(text, { kind: "ssh" });
    const top = new FouTopology("v6", { topology: t, hosts: tunnelHostsOf(t) }, { parent: root });
    await valueOf(top.checks);
    await settle();
});

const step = (name: string) => {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no ${name}: ${recorded.map((x) => x.name).join(", ")}`);
    return r.inputs;
};

test("a topology over IPv6 declares -6 ports, ip6tnl links, a boot unit that loads fou6, and a check that reads IPv6 captures", () => {
    assert.match(step("v6-k1-fou-5555-fou").create, /^else ip fou add port '5555' ipproto '4' -6; fi$/m);
    assert.match(step("v6-k1-k2-k1-link").create, /^ip link add 'ftok2' type ip6tnl mode ipip6 remote '2001:db8:5155::182' local '2001:db8:5155::181' hoplimit '255' encaplimit none/m);
    // (The boot script is quoted inside the step's program.)
    assert.match(step("v6-k1-k2-k1-boot").stdin, /modprobe '\\''fou'\\''; modprobe '\\''fou6'\\''; modprobe '\\''ip6_tunnel'\\''/);
    assert.match(step("v6-k1-k2-k1-check").stdin, /fou_local='2001:db8:5155::181'; fou_remote='2001:db8:5155::182'/);
    assert.match(step("v6-k1-prep-kernel").stdin, /fou_modules='fou fou6 ip6_tunnel'/);
});

test("FouTunnel refuses an underlay address of the other family, naming the end", () => {
    const make = () =>
        new FouTunnel("mixed", { a: { host: h1, gwip: "10.10.10.1" }, b: { host: { ...h2, underlayAddress: "198.51.100.182" }, gwip: "10.10.10.2" }, port: 5555, underlay: 6 }, { parent: root });
    assert.throws(make, (e: unknown) => e instanceof FouInputError && /FouTunnel mixed: b\.host\.underlayAddress must be an IPv6 address like 2001:db8::1 \(got "198\.51\.100\.182"\)/.test(String(e)));
});
