/**
 * Host kind `ssh` where every host is reached through sudo (issue #22): two VMs started outside
 * any stack (vm/vm.sh), each with a non-root user `deploy` that has passwordless sudo, and
 * Debian's /bin/sh, dash, under every step (`sudo -n /bin/sh -s create`). One stack uses every
 * check there is: tunnel a (ipip over FOU 5555, persisted, routed prefixes, so ip_forward and
 * loose rp_filter are checked too), tunnel b (sit over GUE 5556), the firewall. Its up works,
 * pings cross both tunnels, a refresh finds nothing changed, and its destroy leaves each host
 * byte for byte as recorded before (harness hostSnapshot).
 *
 * Then, on a stack of tunnel a alone, each kind of step is made to fail after it changed the
 * host: a wrapper earlier in sudo's secure_path (/usr/local/sbin) runs the real ip, nft,
 * systemctl or modprobe and then exits 1 when its arguments are the fault's. The up fails,
 * saying which host and object and that the step put back what it changed; the destroy that
 * follows leaves each host byte for byte as before the stacks.
 * The test stops the VMs itself. Run under the VM lock: flock /tmp/fou-vm.lock …
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { shq } from "../../components/shell";
import { explain, PulumiResult, TestStack, hostSnapshot, pingAndCapture, snapshotDiff, ssh } from "./harness";
import { OutsideVms } from "./outsideVms";

const U1 = "198.51.100.171";
const U2 = "198.51.100.172";
const vms = new OutsideVms({ name: "sudohosts", bridge: "fsu-br" });
const dir = vms.dir;
const VMS = [vms.vm("u1", U1, "fsu-u1", "52:54:00:5e:01:71"), vms.vm("u2", U2, "fsu-u2", "52:54:00:5e:01:72")];
const ADDRESS: Record<string, string> = { u1: U1, u2: U2 };
/** Prefixes each host routes into tunnel a: TEST-NET-2 addresses nobody uses, clear of the SSH path (.1, .171, .172). */
const ROUTED = { u1: "198.51.100.224/28", u2: "198.51.100.240/28" };
const STACK = "itest-sudo";
const timings: Record<string, number> = {};
const stack = new TestStack(STACK);
/** Wrappers that may be on a VM: removed in `after` whatever happened. */
const WRAPPED = ["ip", "nft", "systemctl", "modprobe"];

let key = ""; // the machines' admin key: root and deploy on both
const hostKeys = vms.hostKeys;
let baseline: Record<string, string> = {};
let stackMade = false;
/** The stack holds nothing on the hosts (a destroy passed since its last up). */
let clean = true;

/** SSH as a user other than root (the harness logs in as root). */
const sshAs = (user: string, host: string, command: string) => vms.sshAs(user, host, command);

/** Both tunnels (ipip/FOU with routes and persist, sit/GUE); ONLY_A: the first alone, which every fault below needs. */
function topologyFile(onlyA = false): string {
    const file = path.join(dir, onlyA ? "topology-a.yaml" : "topology.yaml");
    writeFileSync(
        file,
        [
            "hosts:",
            ...VMS.flatMap((v) => [`  - name: ${v.name}`, "    ssh:", `      address: ${v.address}`, "      user: deploy", `      hostKey: ${hostKeys[v.name]}`]),
            "tunnels:",
            "  - hosts: [u1, u2]",
            "    name: a",
            "    port: 5555",
            "    gwips: [10.10.10.1, 10.10.10.2]",
            "    interfaces: [a-u2, a-u1]",
            "    persist: true",
            "    routes:",
            `      u1: [${ROUTED.u1}]`,
            `      u2: [${ROUTED.u2}]`,
            ...(onlyA
                ? []
                : [
                      "  - hosts: [u1, u2]",
                      "    name: b",
                      "    protocol: sit",
                      "    encap: gue",
                      "    port: 5556",
                      "    gwips: [fd00:10:10:10::1, fd00:10:10:10::2]",
                      "    interfaces: [b-u2, b-u1]",
                  ]),
            "",
        ].join("\n"),
    );
    return file;
}

/** Both hosts' snapshots equal the baseline, byte for byte; the diff (and RUNS' output) on failure. */
function assertAsBefore(runs: PulumiResult[]): void {
    for (const v of VMS) {
        const now = hostSnapshot(key, v.address);
        const diff = snapshotDiff(baseline[v.name], now);
        const shown = runs.map((r) => (r.stdout + r.stderr).slice(-6000)).join("\n----\n");
        assert.equal(diff, "", `${v.name} differs from before the stack:\n${diff}\n\nthe runs:\n${shown}`);
        assert.equal(now, baseline[v.name], `${v.name}: same lines, another order`);
    }
}

before(async () => {
    vms.open();
    key = vms.key;
    timings.bootBoth = await vms.start(VMS);
});

after(async () => {
    // Whatever happened above: no wrapper left, the stack's undo, the machines, the bridge, the files.
    for (const v of VMS) {
        try {
            ssh(key, v.address, `rm -f ${WRAPPED.map((t) => `/usr/local/sbin/${t}`).join(" ")}`);
        } catch (e) {
            console.error(`removing wrappers on ${v.name}: ${e}`);
        }
    }
    if (stackMade) {
        await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    }
    await stack.remove();
    await vms.close();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

test("two servers reached as deploy through sudo, /bin/sh being dash; sudo's PATH starts with /usr/local/sbin", () => {
    const t = Date.now();
    for (const v of VMS) {
        vms.addLogins(v.address, [{ user: "deploy", sudo: "nopasswd" }]);
        assert.equal(sshAs("deploy", v.address, "id -un; sudo -n id -u").trim(), "deploy\n0");
        assert.match(sshAs("deploy", v.address, "readlink -f /bin/sh").trim(), /\/dash$/, `${v.name}: /bin/sh is dash`);
        // What the wrappers below rely on: a step's commands are looked up in /usr/local/sbin first.
        assert.match(sshAs("deploy", v.address, "sudo -n /bin/sh -c 'echo $PATH'").trim(), /^\/usr\/local\/sbin:/, v.name);
    }
    timings.users = (Date.now() - t) / 1000;
    baseline = { u1: hostSnapshot(key, U1), u2: hostSnapshot(key, U2) };
    // The snapshot itself is stable: taken again, nothing moved.
    assert.equal(snapshotDiff(baseline.u1, hostSnapshot(key, U1)), "");
    assert.equal(snapshotDiff(baseline.u2, hostSnapshot(key, U2)), "");
});

test("a stack using every check (routes, ip_forward, rp_filter, persist, firewall, ipip/FOU and sit/GUE) works through sudo under dash, and its destroy restores both hosts", async () => {
    await stack.init({ hosts: "ssh", topology: topologyFile() });
    stack.setSecret("sshPrivateKey", key);
    stackMade = true;
    clean = false;
    const up = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.up = up.seconds;
    const out = await stack.outputs();
    assert.deepEqual(out.sshCommands, { u1: `ssh deploy@${U1}`, u2: `ssh deploy@${U2}` });
    assert.deepEqual(out.interfaces, { a: { u1: "a-u2", u2: "a-u1" }, b: { u1: "b-u2", u2: "b-u1" } });
    assert.equal(out.verification.length, 4, JSON.stringify(out.verification));
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 3 && v.udpFromPeer >= 3, JSON.stringify(v));
    }
    // Pings of our own, both ways across both tunnels, each seen as UDP on the peer's port.
    for (const [from, fg, to, tg, port] of [
        [U1, "10.10.10.1", U2, "10.10.10.2", 5555],
        [U2, "10.10.10.2", U1, "10.10.10.1", 5555],
        [U1, "fd00:10:10:10::1", U2, "fd00:10:10:10::2", 5556],
        [U2, "fd00:10:10:10::2", U1, "fd00:10:10:10::1", 5556],
    ] as const) {
        const { ping, cap } = pingAndCapture(key, from, fg, to, tg, port);
        assert.match(ping, /3 packets transmitted, 3 received/, `${fg} -> ${tg}`);
        assert.ok(cap.includes(`> ${to}.${port}: UDP`), `${fg} -> ${tg}: ${cap}`);
    }
    for (const [name, ifname, via] of [
        ["u1", "a-u2", "10.10.10.1"],
        ["u2", "a-u1", "10.10.10.2"],
    ] as const) {
        const other = name === "u1" ? "u2" : "u1";
        const s = ssh(key, ADDRESS[name], `ip -4 route show; echo forward=$(cat /proc/sys/net/ipv4/ip_forward); echo rp_filter=$(cat /proc/sys/net/ipv4/conf/${ifname}/rp_filter); systemctl list-unit-files 'fou-tunnel-*' --no-legend; nft list tables`);
        // The host's routed prefix goes into the tunnel; the peer's is not routed here.
        assert.match(s, new RegExp(`^${ROUTED[name].replace(/\./g, "\\.")} via ${via.replace(/\./g, "\\.")} dev ${ifname} `, "m"), `${name}:\n${s}`);
        assert.ok(!s.includes(ROUTED[other]), `${name} routes ${ROUTED[other]}:\n${s}`);
        assert.match(s, /^forward=1$/m, `${name}:\n${s}`);
        assert.match(s, /^rp_filter=2$/m, `${name}:\n${s}`);
        const units = s.split("\n").filter((l) => l.startsWith("fou-tunnel-"));
        assert.ok(units.length >= 2, `${name}: boot units:\n${s}`);
        for (const u of units) {
            assert.match(u, new RegExp(`^fou-tunnel-${STACK}-\\S+\\.service\\s+enabled`), `${name}: ${u}`);
        }
        assert.match(s, /^table inet fou_[0-9a-f]{12}$/m, `${name}:\n${s}`);
        // Every step went through deploy's sudo, as /bin/sh with its program on stdin.
        const journal = ssh(key, ADDRESS[name], "journalctl -q --no-pager _COMM=sudo | grep 'deploy : ' || true");
        // (The first look at a host, outside the command plugin, is a `sudo -n /bin/sh -c`; the steps are not.)
        const steps = journal.split("\n").filter((l) => / COMMAND=\/bin\/sh -s create$/.test(l)).length;
        assert.ok(steps >= 10, `${name}: ${steps} steps through sudo; its journal:\n${journal.slice(-3000)}`);
    }
    const refresh = await stack.pulumi(["up", "--refresh", "--expect-no-changes", "--yes", "--skip-preview"]);
    timings.refreshNoChanges = refresh.seconds;
    assert.equal(refresh.code, 0, explain(refresh));
    const down = await stack.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = down.seconds;
    clean = true;
    assertAsBefore([up, refresh, down]);
});

/**
 * One kind of step made to fail after it changed the host: TOOL (ip, nft, systemctl, modprobe)
 * in /usr/local/sbin on HOST runs the real one, then exits 1 when its arguments match WHEN (a
 * shell `case` pattern on "$*"). OBJECT is how the step's messages name what it makes. WHEN
 * names that one object: the two tunnels' steps run side by side, in no fixed order.
 */
interface Fault {
    readonly kind: string;
    readonly host: "u1" | "u2";
    readonly tool: string;
    readonly when: string;
    readonly object: string;
}

const FAULTS: Fault[] = [
    { kind: "link", host: "u1", tool: "ip", when: "'link add a-u2 '*", object: "link a-u2" },
    { kind: "address (GWIP)", host: "u2", tool: "ip", when: "'addr replace 10.10.10.2/'*", object: "address 10.10.10.2 on a-u1" },
    // The routed prefix's route, made after the route to the peer's GWIP (which stays).
    { kind: "route", host: "u1", tool: "ip", when: `'route replace to ${ROUTED.u1} '*`, object: `route to ${ROUTED.u1} on a-u2` },
    { kind: "FOU port", host: "u2", tool: "ip", when: "'fou add port 5555 '*", object: "FOU port 5555" },
    { kind: "firewall", host: "u1", tool: "nft", when: "'-f '*", object: "nftables table inet fou_" },
    { kind: "boot unit", host: "u2", tool: "systemctl", when: "'enable '*", object: `boot unit fou-tunnel-${STACK}-` },
    { kind: "HostPrep (kernel modules)", host: "u1", tool: "modprobe", when: "ipip", object: "kernel modules" },
];

function escape(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

for (const f of FAULTS) {
    test(`a ${f.kind} step that fails after it changed ${f.host} puts back what it changed; destroy then restores both hosts byte for byte`, async () => {
        assert.ok(stackMade, "the stack was not made");
        if (!clean) {
            // A test before this one failed before its destroy: start from an empty stack.
            await stack.ok(["destroy", "--yes", "--skip-preview"]);
            clean = true;
        }
        // The faults need tunnel a only: half the steps to build and undo each time.
        await stack.setConfig({ topology: topologyFile(true) });
        const at = ADDRESS[f.host];
        const real = sshAs("deploy", at, `sudo -n /bin/sh -c 'command -v ${f.tool}'`).trim();
        assert.match(real, /^\/(usr\/)?s?bin\//, `${f.host}: ${f.tool} is ${real}`);
        const wrapper = [
            "#!/bin/sh",
            `# sudoHosts.test.ts: the real ${f.tool}, then a failure when the arguments are the fault's.`,
            `${real} "$@" || exit`,
            `case "$*" in ${f.when}) echo "test fault: ${f.tool} $* made its change, then failed" >&2; exit 1 ;; esac`,
            "",
        ].join("\n");
        const target = `/usr/local/sbin/${f.tool}`;
        let up: PulumiResult;
        ssh(key, at, `printf '%s' ${shq(wrapper)} > ${target}.tmp && chmod 0755 ${target}.tmp && mv ${target}.tmp ${target}`);
        try {
            assert.equal(sshAs("deploy", at, `sudo -n /bin/sh -c 'command -v ${f.tool}'`).trim(), target);
            clean = false;
            up = await stack.pulumi(["up", "--yes", "--skip-preview"]);
        } finally {
            ssh(key, at, `rm -f ${target}`);
        }
        timings[`up ${f.kind}`] = up.seconds;
        const text = up.stdout + up.stderr;
        assert.notEqual(up.code, 0, `the up passed:\n${text.slice(-6000)}`);
        assert.ok(text.includes('running "sudo -n /bin/sh -s create":'), text.slice(-6000));
        const label = `${f.host}: ${f.object}`;
        // The host's own reason, behind the host and the object.
        assert.match(text, new RegExp(`^\\s*fou-tunnel: ${escape(label)}\\S*: test fault: ${escape(f.tool)} `, "m"), text.slice(-6000));
        assert.match(text, new RegExp(`^\\s*fou-tunnel: ${escape(label)}\\S*: put back what this step changed$`, "m"), text.slice(-6000));
        assert.doesNotMatch(text, /could not put back/, text.slice(-6000));
        const down = await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
        timings[`destroy ${f.kind}`] = down.seconds;
        assert.equal(down.code, 0, explain(down));
        clean = true;
        assertAsBefore([up, down]);
    });
}
