/**
 * Host kind `ssh`, for real: two VMs started outside any stack (vm/vm.sh, as someone's existing
 * servers: s1 logged in to as root and running another tool's FOU tunnel and nft table, s2 with a
 * non-root user `deploy` that has passwordless sudo), then two stacks of kind ssh on them, each
 * with its own tunnel (A: ipip over FOU 5555, persisted; B: gre over FOU 6666). Both work; the
 * destroy of one leaves the other working; the destroy of both leaves each host byte for byte as
 * recorded before (links, addresses, routes, FOU ports, nft ruleset, sysctls, modules, files under
 * /etc and /var/lib/fou-tunnel), and the VMs running. A third stack with a wrong host key and a
 * user whose sudo wants a password fails in its first commands, saying so, and changes nothing.
 * A fourth whose interface names are taken (stack A's link, the other tool's), and whose ipip
 * tunnel joins the same two addresses as stack A's, is refused by name, and its destroy takes
 * nothing of theirs.
 * The test stops the VMs itself. Run under the VM lock: flock /tmp/fou-vm.lock …
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { explain, TestStack, hostSnapshot, pingAndCapture, snapshotDiff, ssh } from "./harness";
import { OutsideVms } from "./outsideVms";

const S1 = "198.51.100.161";
const S2 = "198.51.100.162";
const vms = new OutsideVms({ name: "sshhosts", bridge: "fsh-br" });
const dir = vms.dir;
const VMS = [vms.vm("s1", S1, "fsh-s1", "52:54:00:5e:01:61"), vms.vm("s2", S2, "fsh-s2", "52:54:00:5e:01:62")];
const timings: Record<string, number> = {};
const stacks = { a: new TestStack("itest-ssh-a"), b: new TestStack("itest-ssh-b"), c: new TestStack("itest-ssh-c"), d: new TestStack("itest-ssh-d") };

let key = ""; // the machines' admin key: root on both, and deploy on s2
const hostKeys = vms.hostKeys;
let baseline: Record<string, string> = {};

/** SSH as a user other than root (the harness logs in as root). */
const sshAs = (user: string, host: string, command: string) => vms.sshAs(user, host, command);

/** A topology file of two ssh hosts, s1 as root and s2 as `s2user` through sudo, and one tunnel. */
function topologyFile(name: string, opts: { s2user: string; s1key?: string; tunnel: string }): string {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(
        file,
        [
            "hosts:",
            "  - name: s1",
            "    ssh:",
            `      address: ${S1}`,
            `      hostKey: ${opts.s1key ?? hostKeys.s1}`,
            "  - name: s2",
            "    ssh:",
            `      address: ${S2}`,
            `      user: ${opts.s2user}`,
            `      hostKey: ${hostKeys.s2}`,
            "tunnels:",
            opts.tunnel,
            "",
        ].join("\n"),
    );
    return file;
}

async function initStack(s: TestStack, topology: string): Promise<void> {
    await s.init({ hosts: "ssh", topology });
    s.setSecret("sshPrivateKey", key);
}

before(async () => {
    vms.open();
    key = vms.key;
    timings.bootBoth = await vms.start(VMS);
});

after(async () => {
    // Whatever happened above: the stacks' undo, then the machines themselves, the bridge, the files.
    for (const s of Object.values(stacks)) {
        await s.pulumi(["destroy", "--yes", "--skip-preview"]);
        await s.remove();
    }
    await vms.close();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

test("two existing servers: s1 runs another tool's FOU tunnel and nft table; s2 has a sudo user", () => {
    // Someone else's FOU port, tunnel and firewall table on s1, which no stack may touch.
    ssh(
        key,
        S1,
        [
            "set -e",
            "modprobe fou; modprobe ipip",
            "ip fou add port 7777 ipproto 4",
            `ip link add other0 type ipip remote 203.0.113.77 local ${S1} ttl 64 encap fou encap-sport auto encap-dport 7777`,
            "ip addr add 10.77.0.1/32 dev other0; ip link set other0 up",
            "nft add table inet othertool",
            "nft add chain inet othertool input '{ type filter hook input priority 10; policy accept; }'",
            "nft add rule inet othertool input udp dport 7777 counter accept",
        ].join("\n"),
    );
    // deploy: key login, passwordless sudo. nopw: key login, sudo that asks for a password.
    vms.addLogins(S2, [
        { user: "deploy", sudo: "nopasswd" },
        { user: "nopw", sudo: "password" },
    ]);
    assert.equal(sshAs("deploy", S2, "id -un; sudo -n id -u").trim(), "deploy\n0");
    assert.throws(() => sshAs("nopw", S2, "sudo -n true"), /password is required/);
    baseline = { s1: hostSnapshot(key, S1), s2: hostSnapshot(key, S2) };
    // The snapshot itself is stable: taken again, nothing moved.
    assert.equal(snapshotDiff(baseline.s1, hostSnapshot(key, S1)), "");
    assert.equal(snapshotDiff(baseline.s2, hostSnapshot(key, S2)), "");
    assert.match(baseline.s1, /^port 7777 ipproto 4$/m);
    assert.match(baseline.s1, /table inet othertool/);
});

const TUNNEL_A = ["  - hosts: [s1, s2]", "    name: a", "    port: 5555", "    gwips: [10.10.10.1, 10.10.10.2]", "    interfaces: [a-s2, a-s1]", "    persist: true"].join("\n");
const TUNNEL_B = ["  - hosts: [s1, s2]", "    name: b", "    protocol: gre", "    port: 6666", "    gwips: [10.20.20.1, 10.20.20.2]", "    interfaces: [b-s2, b-s1]"].join("\n");

test("stack A (ssh): up builds its tunnel on both servers, s2's steps through deploy's sudo", async () => {
    await initStack(stacks.a, topologyFile("a", { s2user: "deploy", tunnel: TUNNEL_A }));
    const r = await stacks.a.ok(["up", "--yes", "--skip-preview"]);
    timings.upA = r.seconds;
    const out = await stacks.a.outputs();
    assert.deepEqual(out.underlay, { s1: S1, s2: S2 });
    assert.deepEqual(out.sshCommands, { s1: `ssh root@${S1}`, s2: `ssh deploy@${S2}` });
    assert.deepEqual(out.interfaces, { a: { s1: "a-s2", s2: "a-s1" } });
    assert.equal(out.sshPrivateKey, undefined, "the stack does not hand out the user's key");
    assert.equal(out.verification.length, 2);
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 3 && v.udpFromPeer >= 3, JSON.stringify(v));
    }
    for (const [from, fg, to, tg] of [
        [S1, "10.10.10.1", S2, "10.10.10.2"],
        [S2, "10.10.10.2", S1, "10.10.10.1"],
    ]) {
        const { ping, cap } = pingAndCapture(key, from, fg, to, tg, 5555);
        assert.match(ping, /3 packets transmitted, 3 received/);
        assert.ok(cap.includes(`> ${to}.5555: UDP`), cap);
    }
    // On s2 the stack logged in as deploy and ran its steps through sudo.
    assert.match(ssh(key, S2, "journalctl -q --no-pager _COMM=sudo | grep -c 'deploy : .*COMMAND=/bin/sh -s create' || true"), /^[1-9]\d*$/m);
    // Its state and boot units are under the stack's own names; the other tool's tunnel is untouched.
    const s1 = ssh(key, S1, "ls /var/lib/fou-tunnel; ls /etc/fou-tunnel; systemctl list-unit-files 'fou-tunnel-*' --no-legend || true; ip -d link show other0; ip fou show");
    assert.match(s1, /^fou-tunnel\.itest-ssh-a$/m);
    assert.match(s1, /^fou-tunnel-itest-ssh-a-\S+\.service\s+enabled/m);
    assert.match(s1, /encap fou encap-sport auto encap-dport 7777/);
    assert.match(s1, /^port 7777 ipproto 4$/m);
    const preview = await stacks.a.pulumi(["preview", "--expect-no-changes"]);
    assert.equal(preview.code, 0, explain(preview));
});

test("stack B (ssh) on the same two servers: its own tunnel, and both work", async () => {
    await initStack(stacks.b, topologyFile("b", { s2user: "deploy", tunnel: TUNNEL_B }));
    const r = await stacks.b.ok(["up", "--yes", "--skip-preview"]);
    timings.upB = r.seconds;
    const out = await stacks.b.outputs();
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
    }
    assert.match(pingAndCapture(key, S1, "10.20.20.1", S2, "10.20.20.2", 6666).cap, new RegExp(`> ${S2.replace(/\./g, "\\.")}\\.6666: UDP`));
    assert.match(pingAndCapture(key, S1, "10.10.10.1", S2, "10.10.10.2", 5555).ping, /3 received/);
    const s2 = ssh(key, S2, "ls /var/lib/fou-tunnel; ip fou show; nft list tables");
    assert.match(s2, /^fou-tunnel\.itest-ssh-a$/m);
    assert.match(s2, /^fou-tunnel\.itest-ssh-b$/m);
    assert.match(s2, /^port 5555 ipproto 4$/m);
    assert.match(s2, /^port 6666 ipproto 47$/m);
    assert.equal((s2.match(/^table inet fou_/gm) ?? []).length, 2, s2);
});

test("stack D, whose interface names are stack A's and the other tool's: refused by name; its destroy leaves theirs", async () => {
    const before = { s1: hostSnapshot(key, S1), s2: hostSnapshot(key, S2) };
    const clash = (ifs: string) => ["  - hosts: [s1, s2]", "    name: d", "    port: 8888", "    gwips: [10.40.40.1, 10.40.40.2]", `    interfaces: [${ifs}]`].join("\n");
    await initStack(stacks.d, topologyFile("d", { s2user: "deploy", tunnel: clash("a-s2, d-s1") }));
    const taken = await stacks.d.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stdout + taken.stderr, /interface a-s2 belongs to another stack \(its state: \/var\/lib\/fou-tunnel\/fou-tunnel\.itest-ssh-a\//);
    topologyFile("d", { s2user: "deploy", tunnel: clash("other0, d-s1") }); // the same file, rewritten
    const foreign = await stacks.d.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stdout + foreign.stderr, /interface other0 exists already and this stack did not make it/);
    // Names of its own, but an ipip tunnel between the two addresses stack A's already joins:
    // the kernel takes one per pair, and says only "File exists".
    topologyFile("d", { s2user: "deploy", tunnel: clash("d-s2, d-s1") });
    const pair = await stacks.d.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(pair.code, 0);
    assert.match(pair.stdout + pair.stderr, /ipip tunnel a-s[12] already joins 198\.51\.100\.16[12] to 198\.51\.100\.16[12]; the kernel takes one ipip tunnel per pair of addresses/);
    const destroyed = await stacks.d.ok(["destroy", "--yes", "--skip-preview"]);
    const runs = [taken, foreign, pair, destroyed].map((r) => r.stdout.slice(-4000)).join("\n----\n");
    assert.equal(snapshotDiff(before.s1, hostSnapshot(key, S1)), "", `s1 as before stack D; its runs:\n${runs}`);
    assert.equal(snapshotDiff(before.s2, hostSnapshot(key, S2)), "", `s2 as before stack D; its runs:\n${runs}`);
    assert.match(pingAndCapture(key, S1, "10.10.10.1", S2, "10.10.10.2", 5555).ping, /3 received/);
});

test("destroy of stack A leaves stack B (and the other tool's tunnel) working", async () => {
    const r = await stacks.a.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroyA = r.seconds;
    const { ping, cap } = pingAndCapture(key, S2, "10.20.20.2", S1, "10.20.20.1", 6666);
    assert.match(ping, /3 packets transmitted, 3 received/);
    assert.ok(cap.includes(`> ${S1}.6666: UDP`), cap);
    for (const h of [S1, S2]) {
        const s = ssh(key, h, "ls /var/lib/fou-tunnel /etc/fou-tunnel 2>&1; ip -o link show; ip fou show; systemctl list-unit-files 'fou-tunnel-*' --no-legend || true");
        assert.doesNotMatch(s, /itest-ssh-a|a-s[12]|port 5555/, s);
        assert.match(s, /b-s[12]/);
        assert.match(s, /^port 6666 ipproto 47$/m);
    }
    assert.match(ssh(key, S1, "ip fou show; ip -o link show other0"), /port 7777 ipproto 4[\s\S]*other0/);
});

test("destroy of stack B: each server exactly as before either stack, and still running", async () => {
    const r = await stacks.b.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroyB = r.seconds;
    for (const v of VMS) {
        const after = hostSnapshot(key, v.address);
        assert.equal(snapshotDiff(baseline[v.name], after), "", `${v.name} differs from before the stacks`);
        assert.equal(after, baseline[v.name]);
        await vms.status(v); // vm.sh status exits 0: the VM runs
    }
    assert.equal(sshAs("deploy", S2, "sudo -n true; echo ok").trim(), "ok");
});

test("a wrong pinned host key and a sudo that wants a password fail the first commands, saying so; nothing changes", async () => {
    // s1 pinned to s2's key (as if s1 had been replaced by another machine), s2 logged in to as nopw.
    await initStack(stacks.c, topologyFile("c", { s2user: "nopw", s1key: hostKeys.s2, tunnel: TUNNEL_A.replace("name: a", "name: c") }));
    const r = await stacks.c.pulumi(["up", "--yes", "--skip-preview"]);
    timings.upFails = r.seconds;
    const text = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, text);
    assert.match(text, /ssh-s1-reachable[\s\S]*host key mismatch|host key mismatch[\s\S]*ssh-s1-reachable/i);
    assert.match(text, /ssh-s2-reachable/);
    assert.match(text, /fou-tunnel: s2: user nopw cannot use sudo without a password \(sudo -n\): allow it \(NOPASSWD\) for this user, or connect as root/);
    // Nothing ran past the first commands.
    assert.doesNotMatch(text, /prep-kernel.*created/);
    await stacks.c.ok(["destroy", "--yes", "--skip-preview"]);
    for (const v of VMS) {
        assert.equal(snapshotDiff(baseline[v.name], hostSnapshot(key, v.address)), "", v.name);
    }
});
