import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, test } from "node:test";
import { byArgs, fixtureTests } from "./fakeHost";
import { recorded, root, settle, valueOf } from "./mocks";
import { DriftProbe } from "../../components/driftProbe";
import { FouPort, fouPortObject } from "../../components/fouPort";
import { FouTunnel } from "../../components/fouTunnel";
import { Gwip, gwipObject } from "../../components/gwip";
import { TunnelHost } from "../../components/host";
import { HostPrep } from "../../components/hostPrep";
import { IpipFouLink } from "../../components/ipipFouLink";
import { Route, routeObject } from "../../components/route";
import { FouInputError } from "../../lib/validate";

const k1: TunnelHost = { name: "k1", underlayAddress: "198.51.100.151", device: "eth0", connection: { host: "198.51.100.151" } };
const k2: TunnelHost = { name: "k2", underlayAddress: "198.51.100.152", device: "eth0", connection: { host: "198.51.100.152" } };

let tunnel: FouTunnel;
before(async () => {
    const p1 = new HostPrep("k1-prep", { host: k1 }, { parent: root });
    const p2 = new HostPrep("k2-prep", { host: k2 }, { parent: root });
    tunnel = new FouTunnel(
        "fou",
        {
            a: { host: k1, gwip: "10.10.10.1", prepared: p1.ready },
            b: { host: k2, gwip: "10.10.10.2", prepared: p2.ready },
            port: 5555,
        },
        { parent: root },
    );
    await valueOf(tunnel.checks);
    await settle();
});

function cmd(name: string) {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no resource named ${name}; have ${recorded.map((x) => x.name).join(", ")}`);
    return r;
}

test("FouPort runs the guide's ip fou add/del, guarded to be idempotent", () => {
    const c = cmd("fou-k1-fou");
    assert.equal(c.type, "command:remote:Command");
    const lines = c.inputs.create.split("\n");
    // After the library and the object's functions: the create itself.
    const body = lines.slice(lines.lastIndexOf("set -eu"));
    // Its instance id lives on the host, namespaced by project and stack, named after the
    // resource; the port is one kernel object whoever added it: a claim per stack, under shared/.
    const files =
        "f='/var/lib/fou-tunnel/fou-tunnel.unit/fou-k1-fou.id'; fou_root='/var/lib/fou-tunnel'; fou_owner=''; " +
        "fou_shared='/var/lib/fou-tunnel/shared/fou-port-5555-ipproto-4'; fou_claim='/var/lib/fou-tunnel/shared/fou-port-5555-ipproto-4/fou-tunnel.unit.fou-k1-fou'";
    assert.equal(body[1], files, c.inputs.create);
    assert.ok(lines.includes(fouPortObject(5555, 4).apply.split("\n")[0]), c.inputs.create);
    // A port bound to another protocol is not silently taken over.
    assert.ok(lines.some((l: string) => /already a FOU port bound otherwise/.test(l)));
    assert.ok(lines.includes("else ip fou add port '5555' ipproto '4'; fi"));
    assert.deepEqual([body.length, body.at(-1)], [4, "fou_object_create"]);
    // The delete (components/sh/object.sh) drops the claim and removes the port with the last one.
    assert.ok(c.inputs.delete.endsWith(["", "set -eu", files, "fou_object_delete"].join("\n")), c.inputs.delete);
    assert.ok(c.inputs.stdin.includes(["fou_remove() (", fouPortObject(5555, 4).remove!, ")"].join("\n")), c.inputs.stdin);
    // A shared port's step carries the claims test, not the owner check of exclusive objects.
    assert.match(c.inputs.stdin, /^fou_claimed\(\) \{$/m);
    assert.doesNotMatch(c.inputs.stdin, /^fou_owner_check\(\) \{$/m);
});

/** A host whose `ip fou show` lists LISTING, whose other `ip` calls print `RUN ip …`, named k9. */
const fouShows = (listing: string[]) => ({ ip: byArgs("ip", { "fou show": listing }), hostname: "echo k9" });
const port5555 = fouPortObject(5555, 4);
const here = ["port 9 gue", "port 5555 ipproto 4 local 198.51.100.151"];
const missing = "FOU port 5555 (ipproto 4) is missing\n";

fixtureTests("a FOU port is told from `ip fou show` by its whole first words (5555 is not 55555, 4 is not 41)", [
    { name: "check passes when it is there", script: () => port5555.check, fakes: fouShows(here), expect: { code: 0, out: "" } },
    { name: "apply leaves it when it is there", script: () => port5555.apply, fakes: fouShows(here), expect: { code: 0, out: "" } },
    { name: "remove deletes it when it is there", script: () => port5555.remove!, fakes: fouShows(here), expect: { code: 0, out: "RUN ip fou del port 5555\n" } },
    ...[["port 55555 ipproto 4"], ["port 5555 ipproto 41"], ["port 555 ipproto 4"], []].flatMap((other) => [
        { name: `check fails on [${other.join()}]`, script: () => port5555.check, fakes: fouShows(other), expect: { code: 1, out: missing } },
        { name: `remove does nothing on [${other.join()}]`, script: () => port5555.remove!, fakes: fouShows(other), expect: { code: 0, out: "" } },
    ]),
    { name: "apply adds it beside port 55555", script: () => port5555.apply, fakes: fouShows(["port 55555 ipproto 4"]), expect: { code: 0, out: "RUN ip fou add port 5555 ipproto 4\n" } },
    {
        name: "apply refuses the port bound to gue",
        script: () => port5555.apply,
        fakes: fouShows(["port 5555 gue"]),
        expect: { code: 1, out: /UDP port 5555 on k9 is already a FOU port bound otherwise: port 5555 gue/, outLacks: /^RUN ip fou add/m },
    },
    { name: "a gue port's check passes on gue", script: () => fouPortObject(5556, 4, "gue").check, fakes: fouShows(["port 5556 gue"]), expect: { code: 0 } },
    { name: "a gue port's check fails on ipproto 4", script: () => fouPortObject(5556, 4, "gue").check, fakes: fouShows(["port 5556 ipproto 4"]), expect: { code: 1 } },
]);

test("IpipFouLink on k1 is the guide's ftok2 towards k2, and k2 mirrors it", () => {
    const l1 = cmd("fou-k1-link").inputs;
    const l2 = cmd("fou-k2-link").inputs;
    assert.ok(
        l1.create.split("\n").includes(
            "ip link add 'ftok2' type ipip remote '198.51.100.152' local '198.51.100.151' ttl '255' dev 'eth0' encap fou encap-sport auto encap-dport '5555'",
        ),
        l1.create,
    );
    assert.ok(l1.create.split("\n").includes("ip link set dev 'ftok2' up"));
    assert.match(l1.delete, /^fou_remove\(\) \(\nif ip link show dev 'ftok2' >\/dev\/null 2>&1; then ip link del dev 'ftok2'; fi\n\)$/m);
    assert.ok(
        l2.create.split("\n").includes(
            "ip link add 'ftok1' type ipip remote '198.51.100.151' local '198.51.100.152' ttl '255' dev 'eth0' encap fou encap-sport auto encap-dport '5555'",
        ),
        l2.create,
    );
});

test("Gwip and Route are the guide's addresses and static routes, mirrored", () => {
    assert.match(cmd("fou-k1-addr").inputs.create, /^ip addr replace '10\.10\.10\.1\/32' dev 'ftok2'$/m);
    assert.match(cmd("fou-k2-addr").inputs.create, /^ip addr replace '10\.10\.10\.2\/32' dev 'ftok1'$/m);
    assert.match(cmd("fou-k1-addr").inputs.delete, /ip addr del '10\.10\.10\.1\/32' dev 'ftok2'/);
    assert.match(cmd("fou-k1-route").inputs.create, /^ip route replace to '10\.10\.10\.2\/32' via '10\.10\.10\.1' dev 'ftok2'$/m);
    assert.match(cmd("fou-k2-route").inputs.create, /^ip route replace to '10\.10\.10\.1\/32' via '10\.10\.10\.2' dev 'ftok1'$/m);
    assert.match(cmd("fou-k2-route").inputs.delete, /ip route del to '10\.10\.10\.1\/32' via '10\.10\.10\.2' dev 'ftok1'/);
});

test("HostPrep checks the kernel, loads fou and ipip, and sets ip_forward the guide's way", () => {
    const k = cmd("k1-prep-kernel").inputs;
    // The modules in load order and the host's own paths, as the step's variables; the rest
    // is components/sh/kernel-prep.sh.
    assert.match(k.create, /^fou_modules='fou ipip'; /m);
    assert.match(k.create, /^fou_kernel_release='\/proc\/sys\/kernel\/osrelease'; fou_os_release='\/etc\/os-release'; fou_lib_modules='\/lib\/modules'; fou_sys_module='\/sys\/module'$/m);
    assert.match(k.create, /\nfou_kernel_create$/);
    assert.match(k.create, /upgrade the kernel and reboot/);
    assert.match(k.create, /info=\$\(modinfo fou 2>\/dev\/null\)/);
    assert.match(k.delete, /\nfou_kernel_delete$/);
    assert.match(k.delete, /modprobe -r/);
    // What it loaded is listed on the host, not read from PULUMI_COMMAND_STDOUT (sshd refuses it).
    assert.match(k.create, /f='\/var\/lib\/fou-tunnel\/fou-tunnel\.unit\/k1-prep-kernel\.modules'/);
    assert.doesNotMatch(k.delete, /PULUMI_COMMAND/);
    // A changed module list updates in place: it is not a trigger (a replace would unload them).
    assert.deepEqual(cmd("k1-prep-kernel").inputs.triggers, []);
    const f = cmd("k1-prep-ip-forward").inputs;
    assert.match(f.create, /net\.ipv4\.ip_forward = 1/);
    assert.match(f.create, /sysctl -q -w net\.ipv4\.ip_forward=1/);
    assert.match(f.delete, /ip_forward\.orig/);
});

test("steps depend on each other in the guide's order, independent steps side by side", () => {
    for (const h of ["k1", "k2"]) {
        // Forwarding needs no module and nothing waits for it.
        assert.deepEqual(cmd(`${h}-prep-ip-forward`).dependsOn, []);
        // Both hosts' kernels are checked before either gets a tunnel object; the port and the
        // link need only the modules, so they are made side by side.
        assert.deepEqual(cmd(`fou-${h}-fou`).dependsOn, ["k1-prep-kernel", "k2-prep-kernel"]);
        assert.deepEqual(cmd(`fou-${h}-link`).dependsOn, ["k1-prep-kernel", "k2-prep-kernel"]);
        assert.deepEqual(cmd(`fou-${h}-addr`).dependsOn, [`fou-${h}-link`]);
        assert.deepEqual(cmd(`fou-${h}-route`).dependsOn, [`fou-${h}-addr`]);
        // The check needs both ends' routes: the replies travel back through the peer's.
        assert.deepEqual(cmd(`fou-${h}-check`).dependsOn.sort(), ["fou-k1-fou", "fou-k1-route", "fou-k2-fou", "fou-k2-route"]);
    }
});

test("a recreated object recreates what sits on it: triggers carry the instance below", () => {
    // An instance is known at preview time: the object's triggers and its drift probe's id (a
    // replaced probe means a repaired, so rebuilt, object), never the command's stdout.
    const instance = (name: string) =>
        createHash("sha256").update(JSON.stringify([cmd(name).inputs.triggers, "", `${name}-probe-id`])).digest("hex").slice(0, 32);
    assert.ok(cmd("fou-k1-addr").inputs.triggers.includes(instance("fou-k1-link")));
    assert.ok(cmd("fou-k1-route").inputs.triggers.includes(instance("fou-k1-addr")));
    assert.deepEqual(cmd("fou-k1-check").inputs.triggers.sort(), [instance("fou-k1-route"), instance("fou-k2-route")].sort());
    assert.deepEqual(cmd("fou-k1-fou").inputs.triggers, [5555, 4]);
});

test("every child is parented to its component", () => {
    assert.equal(cmd("fou-k1-fou").parent, "fou-k1");
    assert.equal(cmd("fou-k1").parent, "fou");
    assert.equal(cmd("fou").parent, "root");
    assert.equal(cmd("k1-prep-kernel").parent, "k1-prep");
});

test("outputs: GWIPs, interfaces, MTU and the check from both ends", async () => {
    assert.deepEqual(tunnel.gwips, { k1: "10.10.10.1", k2: "10.10.10.2" });
    assert.deepEqual(tunnel.interfaces, { k1: "ftok2", k2: "ftok1" });
    assert.equal(await valueOf(tunnel.ends[0].mtu), 1472);
    assert.equal(await valueOf(tunnel.ends[1].underlay), "198.51.100.152");
    const checks = await valueOf(tunnel.checks);
    assert.equal(checks.length, 2);
    assert.equal(checks[0].received, 3);
});

test("the connection (it holds the private key) is sent as a secret", () => {
    const c = cmd("fou-k1-fou").inputs.connection;
    assert.ok(Object.keys(c).some((k) => k === "4dabf18193072939515e22adb298388d"), JSON.stringify(c));
});

test("delete scripts tolerate what is gone: each runs ip … del only when the object exists", () => {
    for (const s of [fouPortObject(5555, 4), gwipObject("ftok2", "10.10.10.1"), routeObject("ftok2", "10.10.10.2", "10.10.10.1")]) {
        assert.match(s.remove ?? "", /^if .*; then ip .* del .*; fi$/);
    }
});

const INVALID_COMPONENTS: [string, () => unknown, RegExp][] = [
    ["port 0", () => new FouPort("x1", { host: k1, port: 0 }), /FouPort x1: port must be a UDP port number from 1 to 65535 \(got 0\)/],
    ["ipproto 300", () => new FouPort("x2", { host: k1, port: 5555, ipproto: 300 }), /FouPort x2: ipproto must be an integer from 1 to 255/],
    ["16-char ifname", () => new IpipFouLink("x3", { host: k1, ifname: "a234567890123456", remote: "1.1.1.1", local: "1.1.1.2", port: 1 }), /IpipFouLink x3: ifname "a234567890123456" is 16 characters; interface names have at most 15/],
    ["ifname with shell", () => new IpipFouLink("x4", { host: k1, ifname: "a;rm -rf /", remote: "1.1.1.1", local: "1.1.1.2", port: 1 }), /IpipFouLink x4: ifname "a;rm -rf \/" may only contain/],
    ["ttl 0", () => new IpipFouLink("x5", { host: k1, ifname: "t", remote: "1.1.1.1", local: "1.1.1.2", port: 1, ttl: 0 }), /IpipFouLink x5: ttl must be an integer from 1 to 255/],
    ["gwip not an address", () => new Gwip("x6", { host: k1, ifname: "t", address: "10.10.10", linkInstance: "" }), /Gwip x6: address must be an IPv4 or IPv6 address/],
    ["route with host bits", () => new Route("x7", { host: k1, ifname: "t", destination: "203.0.113.5/24", via: "10.10.10.1", gwipInstance: "" }), /Route x7: destination 203.0.113.5\/24 has host bits set; the network is 203.0.113.0\/24/],
    ["route via garbage", () => new Route("x8", { host: k1, ifname: "t", destination: "10.10.10.2", via: "$(id)", gwipInstance: "" }), /Route x8: via must be an IPv4 address/],
    ["module name", () => new HostPrep("x9", { host: k1, modules: ["fou; reboot"] }), /HostPrep x9: module name "fou; reboot" is not valid/],
    ["no modules", () => new HostPrep("x10", { host: k1, modules: [] }), /HostPrep x10: modules must not be empty/],
    ["same host twice", () => new FouTunnel("x11", { a: { host: k1, gwip: "10.0.0.1" }, b: { host: k1, gwip: "10.0.0.2" }, port: 5555 }), /FouTunnel x11: both ends are host "k1"/],
    ["same GWIP twice", () => new FouTunnel("x12", { a: { host: k1, gwip: "10.0.0.1" }, b: { host: k2, gwip: "10.0.0.1" }, port: 5555 }), /FouTunnel x12: both ends have GWIP 10.0.0.1/],
    ["derived ifname too long", () => new FouTunnel("x13", { a: { host: k1, gwip: "10.0.0.1" }, b: { host: { ...k2, name: "averylongname" }, gwip: "10.0.0.2" }, port: 5555 }), /FouTunnel x13: (a\.ifname "ftoaverylongname" is 16 characters|b\.host\.name must be)/],
    ["bad routed prefix", () => new FouTunnel("x14", { a: { host: k1, gwip: "10.0.0.1", routes: ["nope"] }, b: { host: k2, gwip: "10.0.0.2" }, port: 5555 }), /FouTunnel x14: a\.routes\[0\] must be an IPv4 prefix/],
];

for (const [what, make, message] of INVALID_COMPONENTS) {
    test(`components reject ${what} before declaring anything`, async () => {
        const before = recorded.length;
        assert.throws(make, (e: unknown) => e instanceof FouInputError && message.test(e.message), String(message));
        await settle();
        assert.equal(recorded.length, before);
    });
}

test("a host's identity is in every command's triggers, so a replaced machine is configured again", async () => {
    const host: TunnelHost = { ...k1, name: "k9", identity: "host-key-of-this-boot" };
    new FouPort("idp", { host, port: 6000 }, { parent: root });
    await settle();
    assert.deepEqual(cmd("idp-fou").inputs.triggers, [6000, 4, "host-key-of-this-boot"]);
});

test("every tunnel object has a drift probe that checks it on refresh; its id is an argument of the command's update line", () => {
    for (const [name, pattern] of [
        ["fou-k1-fou", /ip fou show .*= 'port 5555 ipproto 4' ]/],
        ["fou-k1-link", /link ftok2 is missing/],
        ["fou-k1-addr", /inet 10\.10\.10\.1\/32 /],
        ["fou-k1-route", /route show to exact '10\.10\.10\.2\/32' dev 'ftok2'/],
        ["k1-prep-kernel", /\/sys\/module\/'ipip'/],
        ["k1-prep-ip-forward", /ip_forward/],
        ["fou-k1-check", /ping -n -q -c 3 -i 0\.2 -W 2 -I '10\.10\.10\.1' '10\.10\.10\.2'/],
    ] as [string, RegExp][]) {
        const probe = cmd(`${name}-probe`);
        assert.equal(probe.type, "pulumi-nodejs:dynamic/fou:DriftProbe");
        assert.match(probe.inputs.check, pattern, name);
        assert.match(probe.inputs.what, /^k1: /);
        assert.equal(probe.parent, cmd(name).parent, name);
        // A replaced probe changes `update`, no trigger: the plugin runs it, the (idempotent)
        // create again. The program on stdin is the same, known at preview, held once.
        const c = cmd(name).inputs;
        assert.match(c.stdin, /(^|\n)fou_create\(\) \{\n/, name);
        assert.equal(c.createLine, "/bin/sh -s create", name);
        assert.equal(c.update, `/bin/sh -s create 'drift-probe-${name}-probe-id'`, name);
        assert.ok(!cmd(name).inputs.triggers.includes(`${name}-probe-id`), name);
    }
});

test("a DriftProbe's observed is its output (not a class field left undefined)", async () => {
    const probe = new DriftProbe("obs-probe", { host: k1, check: "true", object: "thing" }, { parent: root });
    await settle();
    assert.ok(probe.observed !== undefined, "observed is set");
    assert.equal(typeof probe.observed.apply, "function");
});

test("the check runs again when any object of the tunnel changes (a repair in place is an update)", () => {
    const check = String(cmd("fou-k1-check").inputs.create);
    assert.match(check, /\n# objects [0-9a-f]{64}$/);
});

test("no remote command sends the previous output as SSH env requests (sshd refuses them and the plugin warns on every delete)", () => {
    const commands = recorded.filter((r) => r.type === "command:remote:Command");
    assert.ok(commands.length > 10, `${commands.length} commands`);
    for (const c of commands) {
        assert.equal(c.inputs.addPreviousOutputInEnv, false, c.name);
        assert.equal(c.inputs.environment, undefined, c.name);
    }
});
