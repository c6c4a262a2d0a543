/**
 * The options beyond the guide, as commands: GUE ports and links, sit (IPv6 inside) and GRE,
 * a fixed source port, UDP checksums, an MTU, and boot units for persistence.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { assertRun, byArgs, fixtureTests, prints, runOnFakeHost } from "./fakeHost";
import { runInAll, ShellRun } from "./hostShells";
import { recorded, root, settle, valueOf } from "./mocks";
import { bootUnitObject } from "../../components/bootUnit";
import { FouPort, fouPortObject } from "../../components/fouPort";
import { FouTunnel } from "../../components/fouTunnel";
import { gwipObject } from "../../components/gwip";
import { TunnelHost } from "../../components/host";
import { ipipFouLinkObject, linkAddCommand, linkTrigger } from "../../components/ipipFouLink";
import { routeObject } from "../../components/route";
import { FouInputError } from "../../lib/validate";

const host = (name: string, n: number): TunnelHost => ({
    name,
    underlayAddress: `198.51.100.${n}`,
    device: "eth0",
    connection: { host: `198.51.100.${n}` },
});
const k1 = host("k1", 151);
const k2 = host("k2", 152);
const k3 = host("k3", 153);

/** The stdout of a host-shell run that must succeed (as execFileSync would throw otherwise). */
function ok(r: ShellRun): string {
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    return r.stdout;
}

/** A quoted shell word of a host script, unquoted by every host shell (they must agree). */
function unquote(word: string): string {
    return ok(runInAll(`printf '%s' ${word}`));
}

function cmd(name: string) {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no resource named ${name}; have ${recorded.map((x) => x.name).join(", ")}`);
    return r;
}

before(async () => {
    // GUE + fixed sport + checksums + MTU + persistence, IPv4 inside.
    const gue = new FouTunnel(
        "g",
        { a: { host: k1, gwip: "10.10.10.5" }, b: { host: k3, gwip: "10.10.10.6" }, port: 5556, encap: "gue", sport: 5600, csum: true, mtu: 1400, persist: true },
        { parent: root },
    );
    // sit over FOU: IPv6 GWIPs and an IPv6 prefix routed from k2.
    const sit = new FouTunnel(
        "s",
        { a: { host: k2, gwip: "fd00:10:10:10::1", routes: ["fd00:20::/64"] }, b: { host: k3, gwip: "fd00:10:10:10::2" }, port: 5557, protocol: "sit", check: false },
        { parent: root },
    );
    // GRE over FOU.
    new FouTunnel("r", { a: { host: k1, gwip: "10.10.10.9" }, b: { host: k2, gwip: "10.10.10.10" }, port: 5558, protocol: "gre", check: false }, { parent: root });
    await valueOf(gue.checks);
    await valueOf(sit.checks);
    await settle();
});

test("GUE: the port is `ip fou add port P gue` and the link says `encap gue`", () => {
    const port = cmd("g-k1-fou").inputs;
    assert.match(port.create, /^else ip fou add port '5556' gue; fi$/m);
    assert.ok(port.create.includes(fouPortObject(5556, 4, "gue").check), port.create);
    assert.deepEqual(port.triggers, [5556, "gue"]);
    assert.match(
        cmd("g-k1-link").inputs.create,
        /^ip link add 'fto' type ipip remote '198\.51\.100\.153' local '198\.51\.100\.151' ttl '255' dev 'eth0' encap gue encap-sport '5600' encap-dport '5556' encap-csum$|^ip link add 'ftok3' type ipip remote '198\.51\.100\.153' local '198\.51\.100\.151' ttl '255' dev 'eth0' encap gue encap-sport '5600' encap-dport '5556' encap-csum$/m,
    );
});

test("an MTU is set with the link up; without one the kernel's is kept and reported", () => {
    assert.match(cmd("g-k1-link").inputs.create, /^ip link set dev 'ftok3' mtu '1400' up$/m);
    assert.match(cmd("s-k2-link").inputs.create, /^ip link set dev 'ftok3' up$/m);
    assert.match(cmd("s-k2-link").inputs.create, /^read -r mtu < \/sys\/class\/net\/'ftok3'\/mtu; echo "mtu=\$mtu"$/m);
});

test("sit: a FOU port for ipproto 41, `type sit`, IPv6 GWIPs as /128, routes without a gateway", () => {
    assert.match(cmd("s-k2-fou").inputs.create, /ip fou add port '5557' ipproto '41'/);
    assert.match(cmd("s-k2-link").inputs.create, /^ip link add 'ftok3' type sit remote '198\.51\.100\.153' .* encap fou encap-sport auto encap-dport '5557'$/m);
    assert.match(cmd("s-k2-addr").inputs.create, /^ip addr replace 'fd00:10:10:10::1\/128' dev 'ftok3'$/m);
    assert.match(cmd("s-k2-addr").inputs.delete, /\*'inet6 fd00:10:10:10::1\/128 '\*/);
    assert.match(cmd("s-k2-route").inputs.create, /^ip route replace to 'fd00:10:10:10::2\/128' dev 'ftok3'$/m);
    assert.match(cmd("s-k2-route").inputs.delete, /ip '-6' route show to exact 'fd00:10:10:10::2\/128' dev 'ftok3'/);
    assert.match(cmd("s-k2-fd00-20---64-route").inputs.create, /^ip route replace to 'fd00:20::\/64' dev 'ftok3'$/m);
    // The far end has no route to k2's prefix: only k2 routes it.
    assert.ok(!recorded.some((r) => r.name.startsWith("s-k3-fd00")));
});

test("GRE: ipproto 47 and `type gre`", () => {
    assert.match(cmd("r-k1-fou").inputs.create, /ip fou add port '5558' ipproto '47'/);
    assert.match(cmd("r-k1-link").inputs.create, /^ip link add 'ftok2' type gre remote '198\.51\.100\.152' /m);
});

test("a link's trigger is the JSON stacks hold: the protocol under the key mode, the keys in their order", () => {
    // A changed text would replace every link of an existing stack.
    assert.deepEqual(cmd("s-k2-link").inputs.triggers, [
        '{"ifname":"ftok3","remote":"198.51.100.153","local":"198.51.100.152","device":"eth0","port":5557,"ttl":255,"mode":"sit","looseRpFilter":true}',
    ]);
    assert.deepEqual(cmd("r-k1-link").inputs.triggers, ['{"ifname":"ftok2","remote":"198.51.100.152","local":"198.51.100.151","device":"eth0","port":5558,"ttl":255,"mode":"gre"}']);
    assert.deepEqual(cmd("g-k1-link").inputs.triggers, [
        '{"ifname":"ftok3","remote":"198.51.100.153","local":"198.51.100.151","device":"eth0","port":5556,"ttl":255,"encap":"gue","sport":5600,"csum":true,"mtu":1400}',
    ]);
    assert.equal(
        linkTrigger({ ifname: "a", remote: "r", local: "l", device: "d", port: 1, ttl: 9, protocol: "sit", encap: "gue", sport: 2, csum: true, mtu: 1400, looseRpFilter: true }),
        '{"ifname":"a","remote":"r","local":"l","device":"d","port":1,"ttl":9,"mode":"sit","encap":"gue","sport":2,"csum":true,"mtu":1400,"looseRpFilter":true}',
    );
});

test("persistence: one boot unit per end replays modules, link, address and routes in order", () => {
    const unit = cmd("g-k1-boot").inputs;
    // Units and scripts are the stack's own (stack "unit" of project "fou-tunnel" in the mocks).
    assert.match(unit.create, /systemctl enable --no-reload --quiet 'fou-tunnel-unit-ftok3\.service'/);
    assert.match(unit.delete, /systemctl disable --no-reload --quiet 'fou-tunnel-unit-ftok3\.service'/);
    assert.match(unit.delete, /rm -f '\/etc\/systemd\/system\/fou-tunnel-unit-ftok3\.service' '\/etc\/fou-tunnel\/fou-tunnel\.unit\/ftok3\.sh'/);
    // The unit comes after the end is complete, and so goes first on destroy.
    assert.deepEqual(cmd("g-k1-boot").dependsOn, ["g-k1-route"]);
    assert.match(unit.create, /modprobe/);
    assert.equal(cmd("g-k1-boot").parent, "g-k1");
    // The receive port has a unit of its own.
    assert.match(cmd("g-k1-port-boot").inputs.create, /systemctl enable --no-reload --quiet 'fou-tunnel-unit-port-5556\.service'/);
    assert.deepEqual(cmd("g-k1-port-boot").dependsOn, ["g-k1-fou"]);
    // Tunnels without persist write nothing.
    assert.ok(!recorded.some((r) => r.name === "s-k2-boot"));
});

test("boot script: written to /etc/fou-tunnel, runs each step in order and stops at the first failure", () => {
    const body = ["set -eu", "(\nset -eu\necho one\n)", "(\nset -eu\nfalse\n)", "(\necho never\n)"].join("\n");
    const s = bootUnitObject("ftok2", "tunnel k1-k2", body);
    const file = /printf '%s' ('#!\/bin\/sh[\s\S]*?\n') > '\/etc\/fou-tunnel\/fou-tunnel\.unit\/ftok2\.sh\.tmp'/.exec(s.apply);
    assert.ok(file, s.apply);
    // Run the file's text through real shells (dash, bash, busybox sh, which must agree), as the unit will.
    const text = unquote(file[1]);
    assert.match(text, /^#!\/bin\/sh\n# Written by fou-tunnel/);
    const boot = runInAll(text);
    // It fails at the second step, having printed the first's line only.
    assert.notEqual(boot.code, 0, boot.stdout);
    const out = boot.stdout;
    assert.equal(out, "one\n");
    const unit = /printf '%s' ('\[Unit\][\s\S]*?') > '\/etc\/systemd\/system\/fou-tunnel-unit-ftok2\.service'/.exec(s.apply);
    assert.ok(unit, s.apply);
    const unitText = unquote(unit[1]);
    assert.match(unitText, /^Type=oneshot$/m);
    assert.match(unitText, /^ExecStart=\/bin\/sh \/etc\/fou-tunnel\/fou-tunnel\.unit\/ftok2\.sh$/m);
    assert.match(unitText, /^WantedBy=multi-user\.target$/m);
});

test("the boot script of an end is the same steps the components run", async () => {
    const boot = cmd("g-k1-boot").inputs.create as string;
    const steps = [
        ipipFouLinkObject({ ifname: "ftok3", remote: "198.51.100.153", local: "198.51.100.151", device: "eth0", port: 5556, ttl: 255, encap: "gue", sport: 5600, csum: true, mtu: 1400 }).apply,
        gwipObject("ftok3", "10.10.10.5").apply,
        routeObject("ftok3", "10.10.10.6", "10.10.10.5").apply,
    ];
    // The file content is one quoted printf argument: unquote it with a shell.
    const file = /printf '%s' ('#!\/bin\/sh[\s\S]*?\n') > /.exec(boot)![1];
    const text = unquote(file);
    let at = 0;
    for (const step of steps) {
        const i = text.indexOf(step, at);
        assert.ok(i > at, `step missing or out of order:\n${step}\nin\n${text}`);
        at = i;
    }
    assert.match(text, /modprobe 'fou'; modprobe 'ipip'/);
});

/** A host whose `ip -o addr show dev ftok2` prints SHOWN and whose other `ip` calls print `RUN ip …`. */
const addrShows = (shown: string) => ({ ip: byArgs("ip", { "-o addr show dev ftok2": [shown] }) });

fixtureTests(
    "Gwip delete runs `ip addr del` when the address is there, and nothing when it is gone",
    [
        ["10.10.10.1", "5: ftok2    inet 10.10.10.1/32 scope global ftok2"],
        ["fd00:10:10:10:0::1", "5: ftok3    inet6 fd00:10:10:10::1/128 scope global"],
    ].flatMap(([addr, shown]) => [
        { name: `${addr} there`, script: () => gwipObject("ftok2", addr).remove!, fakes: addrShows(shown), expect: { code: 0, out: /^RUN ip addr del .*\/(32|128) dev ftok2$/m } },
        { name: `${addr} gone`, script: () => gwipObject("ftok2", addr).remove!, fakes: addrShows("5: ftok2    inet 10.10.10.99/32 scope global ftok2"), expect: { code: 0, out: "" } },
    ]),
);

test("a FOU port of another binding on the host is refused, not taken over", () => {
    const r = runOnFakeHost({ script: fouPortObject(5556, 4, "fou").apply, fakes: { ip: prints(["port 5556 gue"]), hostname: "echo k9" } });
    assertRun(r, { code: 1, out: /fou-tunnel: UDP port 5556 on k9 is already a FOU port bound otherwise: port 5556 gue/ });
});

test("linkAddCommand writes the guide's line for the defaults", () => {
    assert.equal(
        linkAddCommand({ ifname: "ftok2", remote: "198.51.100.152", local: "198.51.100.151", device: "eth0", port: 5555, ttl: 255 }),
        "ip link add 'ftok2' type ipip remote '198.51.100.152' local '198.51.100.151' ttl '255' dev 'eth0' encap fou encap-sport auto encap-dport '5555'",
    );
});

const INVALID: [string, () => unknown, RegExp][] = [
    ["an IPv4 GWIP on sit", () => new FouTunnel("v1", { a: { host: k1, gwip: "10.0.0.1" }, b: { host: k2, gwip: "fd00::2" }, port: 1, protocol: "sit" }), /FouTunnel v1: a\.gwip must be an IPv6 address/],
    ["an IPv6 route on ipip", () => new FouTunnel("v2", { a: { host: k1, gwip: "10.0.0.1", routes: ["fd00::/64"] }, b: { host: k2, gwip: "10.0.0.2" }, port: 1 }), /FouTunnel v2: a\.routes\[0\] must be an IPv4 prefix/],
    ["an unknown protocol", () => new FouTunnel("v3", { a: { host: k1, gwip: "10.0.0.1" }, b: { host: k2, gwip: "10.0.0.2" }, port: 1, protocol: "vxlan" as "gre" }), /FouTunnel v3: protocol must be one of ipip, sit, gre \(got "vxlan"\)/],
    ["sport 0", () => new FouTunnel("v4", { a: { host: k1, gwip: "10.0.0.1" }, b: { host: k2, gwip: "10.0.0.2" }, port: 1, sport: 0 }), /FouTunnel v4: sport must be "auto" or a UDP port number from 1 to 65535 \(got 0\)/],
    ["a small sit MTU", () => new FouTunnel("v5", { a: { host: k1, gwip: "fd00::1" }, b: { host: k2, gwip: "fd00::2" }, port: 1, protocol: "sit", mtu: 1200 }), /FouTunnel v5: mtu 1200 is below 1280, the smallest MTU IPv6 allows, and a sit tunnel carries IPv6; use 1280 to 65535/],
    ["an unknown encap", () => new FouPort("v6", { host: k1, port: 1, encap: "vxlan" as "gue" }), /FouPort v6: encap must be one of fou, gue \(got "vxlan"\)/],
];

for (const [what, make, message] of INVALID) {
    test(`rejects ${what} before declaring anything`, async () => {
        const before = recorded.length;
        assert.throws(make, (e: unknown) => e instanceof FouInputError && message.test(e.message), String(message));
        await settle();
        assert.equal(recorded.length, before);
    });
}

test("a shared port of another binding is refused by the tunnel", async () => {
    const port = new FouPort("shared", { host: k1, port: 7000, encap: "gue" }, { parent: root });
    assert.throws(
        () => new FouTunnel("v7", { a: { host: k1, gwip: "10.0.0.1", fouPort: port }, b: { host: k2, gwip: "10.0.0.2" }, port: 7000 }),
        /FouTunnel v7: a\.fouPort is gue port 7000; this tunnel needs fou port 7000 ipproto 4/,
    );
    await settle();
});

/** A fake `ip` that shows every object as present and fails every del, as EPERM or EBUSY would. */
const IP_DEL_REFUSED = [
    'case "$*" in',
    '  *" del "*) echo "RTNETLINK answers: Operation not permitted" >&2; return 2 ;;',
    '  "fou show") echo "port 5555 ipproto 4" ;;',
    '  "-o addr show dev ftok2") echo "5: ftok2    inet 10.10.10.1/32 scope global ftok2" ;;',
    '  *"route show"*) echo "10.10.10.2 via 10.10.10.1 dev ftok2" ;;',
    "  *) return 0 ;;",
    "esac",
].join("\n");

fixtureTests(
    "deletes fail when `ip … del` fails on an object that is there (not only skip what is gone)",
    (
        [
            ["fou port", () => fouPortObject(5555, 4).remove!],
            ["link", () => ipipFouLinkObject({ ifname: "ftok2", remote: "198.51.100.152", local: "198.51.100.151", device: "eth0", port: 5555, ttl: 255 }).remove!],
            ["gwip", () => gwipObject("ftok2", "10.10.10.1").remove!],
            ["route", () => routeObject("ftok2", "10.10.10.2", "10.10.10.1").remove!],
        ] as [string, () => string][]
    ).map(([name, script]) => ({ name, script, fakes: { ip: IP_DEL_REFUSED }, expect: { code: 2, out: /Operation not permitted\n$/ } })),
);

const LINK = { ifname: "ftok2", remote: "198.51.100.152", local: "198.51.100.151", device: "eth0", port: 5555, ttl: 255 };

/** `ip -d link show` prints the kind at the start of its third line, as the kernel reports it. */
const leftoverLink = (kind: string) => ({
    ip: byArgs("ip", { "-d link show dev ftok2": ["5: ftok2: <UP>", "    link/x", `    ${kind} remote 1.2.3.4`], "link show dev ftok2": [] }),
    cat: "echo 1472",
});

fixtureTests("link create replaces a leftover tunnel of its kind and refuses any other interface of that name", [
    { name: "a leftover ipip", script: () => ipipFouLinkObject(LINK).apply, fakes: leftoverLink("ipip any"), expect: { code: 0, out: /^RUN ip link del dev ftok2\nRUN ip link add ftok2 type ipip /m } },
    {
        name: "a dummy of that name",
        script: () => ipipFouLinkObject(LINK).apply,
        fakes: leftoverLink("dummy"),
        expect: { code: 1, out: "fou-tunnel: interface ftok2 already exists and is not a ipip tunnel; choose another name\n" },
    },
]);

/** What iproute2 6.1 prints for the guide's link (Debian 12), MTU set to 1400. */
const SHOWN = [
    "5: ftok2@eth0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1400 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000",
    "    link/ipip 198.51.100.151 peer 198.51.100.152 promiscuity 0  allmulti 0 minmtu 0 maxmtu 0 ",
    "    ipip remote 198.51.100.152 local 198.51.100.151 dev eth0 ttl 255 tos inherit pmtudisc encap fou encap-sport auto encap-dport 5555 noencap-csum noencap-csum6 noencap-remcsum addrgenmode eui64 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535 ",
].join("\n");

fixtureTests(
    "link check reads `ip -d link show` as iproute2 prints it: kind, ends, encapsulation, up, MTU",
    (
        [
            ["as created", SHOWN, 0, ""],
            ["down", SHOWN.replace("NOARP,UP,LOWER_UP", "NOARP"), 1, "link ftok2 is down\n"],
            ["another MTU", SHOWN.replace("mtu 1400", "mtu 1472"), 1, "link ftok2 has not mtu 1400\n"],
            ["another port", SHOWN.replace("encap-dport 5555", "encap-dport 5556"), 1, "link ftok2 is not encap fou encap-sport auto encap-dport 5555 noencap-csum \n"],
            ["another remote", SHOWN.replace("remote 198.51.100.152", "remote 198.51.100.153"), 1, "link ftok2 is not remote 198.51.100.152 local 198.51.100.151 dev eth0 ttl 255 \n"],
            ["a sit link", SHOWN.replace("    ipip remote", "    sit remote"), 1, "link ftok2 is not a ipip tunnel\n"],
        ] as [string, string, number, string][]
    ).map(([name, shown, code, out]) => ({
        name,
        script: () => ipipFouLinkObject({ ...LINK, mtu: 1400 }).check,
        fakes: { ip: prints(shown.split("\n")) },
        expect: { code, out },
    })),
);

/** A host whose ipip links are LINES (one `ip -o -d link show` line each) and that has no ftok2. */
const ipipLinks = (lines: string[]) => ({ ip: byArgs("ip", { "-o -d link show type ipip": lines, "link show dev ftok2": { status: 1 } }), hostname: "echo k9" });
const ipipLine = (name: string) =>
    `7: ${name}@eth0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1480 qdisc noqueue state UNKNOWN \\    link/ipip 198.51.100.151 peer 198.51.100.152 \\    ipip remote 198.51.100.152 local 198.51.100.151 dev eth0 ttl inherit `;

fixtureTests("link create names the interface that already joins the same pair of addresses", [
    {
        name: "another link on the pair",
        script: () => ipipFouLinkObject(LINK).apply,
        fakes: ipipLinks([ipipLine("other0")]),
        expect: { code: 1, out: /^fou-tunnel: k9: ipip tunnel other0 already joins 198\.51\.100\.151 to 198\.51\.100\.152; .*\n$/ },
    },
    // Its own name (a leftover deleted just before) and other pairs are no obstacle.
    {
        name: "its own name, another pair",
        script: () => ipipFouLinkObject(LINK).apply,
        fakes: ipipLinks([ipipLine("ftok2"), ipipLine("x").replace("remote 198.51.100.152", "remote 198.51.100.9")]),
        expect: { code: 0, out: /^RUN ip link add ftok2 type ipip .*\n.*\n$/ },
    },
]);
