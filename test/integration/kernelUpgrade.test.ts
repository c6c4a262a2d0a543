/**
 * Issue #18's proof: a host whose kernel has no fou really upgrades and reboots, in the lab of
 * kernelLab.ts (k1 boots Debian's 6.1 without fou from its own disk through GRUB; k2 has fou; a
 * signed repository with 6.12 is served on the test bridge).
 *
 * - Without `kernel:` the up fails at k1's kernel check with the guide's message (no fou module,
 *   the fix for Debian) and changes nothing on k1 (host snapshot; no 6.12 package, no state).
 * - With `kernel: {upgrade: true, package, repository, key}` on k1 the up installs 6.12 from the
 *   repository, reboots k1 exactly once (a new boot id, two kernel boots on its serial console,
 *   the same qemu process), comes back on 6.12 with fou, and builds and verifies the tunnel
 *   (stack output `verification`, and pings across it with the UDP seen on the peer's port).
 *   Stack output `kernels` shows k1's before (6.1) and after (6.12).
 * - A second up is a no-op (`--expect-no-changes`) and reboots nothing.
 * - k1 booted back into 6.1 by itself (GRUB's one-time entry): `preview --refresh` shows the
 *   kernel step's drift, `up --refresh` reboots k1 into 6.12 again and rebuilds the tunnel, and a
 *   refresh after it finds nothing.
 * - The destroy removes every tunnel object and state file from k1, and leaves it on 6.12 with the
 *   repository line and key (docs/topology.md, "Destroy leaves the kernel").
 *
 * The test stops the VMs, the server and the bridge itself. Run under the VM lock:
 * flock /tmp/fou-vm.lock …
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { APT_NAME } from "../../components/kernelUpgradeScripts";
import { explain, hostSnapshot, pingAndCapture, PulumiResult, snapshotDiff, ssh, TestStack } from "./harness";
import { escape, HOST_IP, K1, K2, KernelLab, PACKAGE } from "./kernelLab";

const lab = new KernelLab();
const timings: Record<string, number> = {};
const stacks = { plain: new TestStack("itest-kup-plain"), upgrade: new TestStack("itest-kup") };
let key = ""; // root on both VMs, and admin on k1
let k1Baseline = "";
const asAdmin = (command: string) => lab.asAdmin(command);
const bootId = () => lab.bootId();
const consoleBoots = () => lab.consoleBoots();

async function initStack(s: TestStack, topology: string): Promise<void> {
    await s.init({ hosts: "ssh", topology });
    s.setSecret("sshPrivateKey", key);
}

/** Seconds Pulumi's progress shows for a resource's create (`NAME created (231s)`), if shown. */
function createdSeconds(r: PulumiResult, name: string): number | undefined {
    const m = new RegExp(`${name}\\s+created \\((\\d+(?:\\.\\d+)?)s\\)`).exec(r.stdout);
    return m ? Number(m[1]) : undefined;
}

/** Three pings each way across the tunnel, each seen as UDP on the peer's FOU port. */
function pingsBothWays(): void {
    for (const [from, fg, to, tg] of [
        [K1, "10.10.10.1", K2, "10.10.10.2"],
        [K2, "10.10.10.2", K1, "10.10.10.1"],
    ]) {
        const { ping, cap } = pingAndCapture(key, from, fg, to, tg, 5555);
        assert.match(ping, /3 packets transmitted, 3 received/);
        assert.ok(cap.includes(`> ${to}.5555: UDP`), cap);
    }
}

/** What a stack would leave on k1, in one look. */
const k1Objects = () => ssh(key, K1, "uname -r; echo links:; ip -o link show | awk -F': ' '{print $2}'; echo fou:; ip fou show 2>/dev/null; echo files:; ls -a /var/lib/fou-tunnel 2>&1; echo units:; ls /etc/systemd/system | grep fou-tunnel || true");

before(async () => {
    Object.assign(timings, await lab.open());
    key = lab.key;
    Object.assign(timings, await lab.startVms());
});

after(async () => {
    // Whatever happened above: the stacks' undo, then the machines, the server, the bridge, the files.
    for (const s of Object.values(stacks)) {
        await s.pulumi(["destroy", "--yes", "--skip-preview"]);
        await s.remove();
    }
    await lab.close();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

test("k1 runs Debian's 6.1 without fou, reached as admin with sudo; k2 has fou", () => {
    assert.match(asAdmin("uname -r"), /^6\.1\.\d+/);
    assert.equal(asAdmin("sudo modinfo fou 2>&1 || true").trim(), "modinfo: ERROR: Module fou not found.");
    assert.equal(asAdmin("id -un; sudo -n id -u").trim(), "admin\n0");
    assert.match(ssh(key, K2, "modinfo --field=depends fou"), /ip_tunnel/);
    k1Baseline = hostSnapshot(key, K1);
    assert.equal(snapshotDiff(k1Baseline, hostSnapshot(key, K1)), "", "the snapshot of k1 is stable");
    assert.match(k1Baseline, /^## files$/m);
});

test("no kernel block: up fails at k1's kernel check with the guide's message and the fix; k1 unchanged", async () => {
    const s = stacks.plain;
    await initStack(s, lab.topologyFile("plain"));
    const r = await s.pulumi(["up", "--yes", "--skip-preview"]);
    timings.upRefused = r.seconds;
    const text = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, text);
    assert.match(
        text,
        /fou-tunnel: k1 runs Linux 6\.1\.\S+ without the fou module: install a kernel built with it \(fou needs CONFIG_NET_FOU\) and reboot; on Debian GNU\/Linux 12 \(bookworm\): apt-get update && apt-get install linux-image-amd64 \(Debian's current kernel, which has fou\), then reboot into it/,
    );
    assert.match(text, /k1-prep-kernel/, "the failing step is k1's kernel check");
    assert.doesNotMatch(text, /kernel-upgrade/, "no kernel upgrade is declared without the block");
    // Nothing of a kernel upgrade and nothing of the tunnel on k1.
    const k1 = ssh(key, K1, `dpkg -l | grep linux-image-6.12 || true; ls /etc/apt/sources.list.d /etc/apt/keyrings 2>&1; ls -R /var/lib/fou-tunnel 2>&1; echo links:; ip -o link show; echo fou:; ip fou show 2>&1; echo modules:; cut -d' ' -f1 /proc/modules`);
    assert.doesNotMatch(k1, /linux-image-6\.12|fou-tunnel-kernel|kernel-upgrade|ftok2|port 5555|^(fou|ipip)$/m, k1);
    // Every step on k1 waits for its kernel check: the refused up changed nothing there.
    assert.equal(snapshotDiff(k1Baseline, hostSnapshot(key, K1)), "", `k1 changed by a refused up; its output:\n${r.stdout.slice(-4000)}`);
    const d = await s.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroyRefused = d.seconds;
    assert.equal(snapshotDiff(k1Baseline, hostSnapshot(key, K1)), "", "k1 as before after the destroy");
});

let bootBefore = "";

test("kernel: {upgrade: true} from the signed repository: up installs 6.12, reboots k1 once, builds and verifies the tunnel", async () => {
    const s = stacks.upgrade;
    await initStack(s, lab.topologyFile("upgrade", lab.kernelBlock()));
    bootBefore = bootId();
    assert.equal(consoleBoots().length, 1, consoleBoots().join(", "));
    const r = await s.pulumi(["up", "--yes", "--skip-preview"]);
    timings.upWithUpgrade = r.seconds;
    timings.install = createdSeconds(r, "k1-kernel-upgrade-install") ?? -1;
    timings.rebootAndVerify = createdSeconds(r, "k1-kernel-upgrade-verify") ?? -1;
    assert.equal(r.code, 0, `${r.stdout.slice(-8000)}\n${r.stderr.slice(-4000)}`);

    // Rebooted exactly once, in the same qemu process, into 6.12.
    const bootAfter = bootId();
    assert.notEqual(bootAfter, bootBefore, "k1 rebooted");
    const boots = consoleBoots();
    assert.equal(boots.length, 2, `kernel boots on k1's console: ${boots.join(", ")}`);
    assert.match(boots[0], /^Linux version 6\.1\./);
    assert.match(boots[1], /^Linux version 6\.12\./);
    assert.equal(await lab.k1Pid(), lab.qemuPid);
    const release = asAdmin("uname -r").trim();
    assert.match(release, /^6\.12\.\d+/);
    assert.match(asAdmin("sudo modinfo --field=depends fou"), /ip_tunnel/);

    // The install's own record on k1, and the repository it used.
    const state = ssh(key, K1, "cat /var/lib/fou-tunnel/fou-tunnel.itest-kup/*-install.kernel");
    assert.match(state, new RegExp(`^pending=0\\nold=6\\.1\\.\\S+\\nbootId=${bootBefore}\\nnew=${escape(release)}$`, "m"), state);
    const apt = ssh(key, K1, `cat /etc/apt/sources.list.d/${APT_NAME}.list; ls /etc/apt/keyrings; dpkg-query -W -f='\${Package} \${Status}\\n' '${PACKAGE}'`);
    assert.match(apt, new RegExp(`^deb \\[signed-by=/etc/apt/keyrings/${APT_NAME}\\.(gpg|asc)\\] http://${escape(HOST_IP)}:${lab.port}/ bookworm-fou main$`, "m"), apt);
    assert.match(apt, new RegExp(`^${PACKAGE} install ok installed$`, "m"), apt);
    assert.match(lab.serverLog(), /linux-image-6\.12/, "apt fetched the kernel from the served repository");

    const out = await s.outputs();
    assert.deepEqual(Object.keys(out.kernels), ["k1"], JSON.stringify(out.kernels));
    assert.match(out.kernels.k1.before, /^6\.1\.\d+/, JSON.stringify(out.kernels));
    assert.equal(out.kernels.k1.after, release, JSON.stringify(out.kernels));
    assert.deepEqual(out.underlay, { k1: K1, k2: K2 });
    assert.equal(out.verification.length, 2, JSON.stringify(out.verification));
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 3 && v.udpFromPeer >= 3, JSON.stringify(v));
    }
    pingsBothWays();
    assert.match(ssh(key, K1, "ip -d link show ftok2"), /encap fou encap-sport auto encap-dport 5555/);
});

test("a second up changes nothing and reboots nothing", async () => {
    assert.ok(bootBefore, "the upgrade ran");
    const boot = bootId();
    const r = await stacks.upgrade.pulumi(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    timings.secondUp = r.seconds;
    assert.equal(r.code, 0, `${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`);
    assert.equal(bootId(), boot, "k1 did not reboot");
    assert.equal(consoleBoots().length, 2);
    assert.match(pingAndCapture(key, K1, "10.10.10.1", K2, "10.10.10.2", 5555).ping, /3 received/);
});

test("k1 boots back into 6.1 by itself: a refresh sees it, up --refresh reboots it into 6.12 and rebuilds the tunnel", async () => {
    assert.ok(bootBefore, "the upgrade ran");
    const s = stacks.upgrade;
    const { before: old, after: release } = (await s.outputs()).kernels.k1 as { before: string; after: string };
    let t = Date.now();
    await lab.rebootInto(old);
    timings.rebootIntoOld = (Date.now() - t) / 1000;
    assert.equal(asAdmin("uname -r").trim(), old, "k1 runs the old kernel again");
    assert.equal(consoleBoots().length, 3, consoleBoots().join(", "));

    // The preview after a refresh names the drift: k1's kernel has no fou; the install runs again.
    const preview = await s.pulumi(["preview", "--refresh", "--json"]);
    timings.previewRefresh = preview.seconds;
    assert.equal(preview.code, 0, explain(preview));
    type Step = { op: string; urn: string; oldState?: { outputs?: Record<string, unknown> } };
    const steps = JSON.parse(preview.stdout).steps as Step[];
    // The plan after the refresh steps (op "refresh"), as the update would run it.
    const planned = steps.filter((x) => x.op !== "refresh" && x.op !== "same").map((x) => `${x.op} ${x.urn.slice(x.urn.lastIndexOf("::") + 2)}`);
    const step = (name: string) => steps.find((x) => x.urn.endsWith(name) && x.op !== "refresh");
    const probe = step("k1-kernel-upgrade-install-probe");
    assert.equal(probe?.op, "replace", `the plan:\n${planned.join("\n")}`);
    assert.match(String(probe?.oldState?.outputs?.observed), new RegExp(`^k1: kernel with fou: Linux ${escape(old)} lacks: fou\\b.*\\(booted into an old kernel\\?\\)$`));
    assert.equal(step("k1-kernel-upgrade-install")?.op, "update", `the plan:\n${planned.join("\n")}`);

    const boot = bootId();
    t = Date.now();
    const r = await s.pulumi(["up", "--refresh", "--yes", "--skip-preview"]);
    timings.repairUp = (Date.now() - t) / 1000;
    assert.equal(r.code, 0, explain(r));
    assert.notEqual(bootId(), boot, "k1 rebooted");
    assert.equal(asAdmin("uname -r").trim(), release);
    const boots = consoleBoots();
    assert.equal(boots.length, 4, boots.join(", "));
    assert.match(boots[3], new RegExp(`^Linux version ${escape(release)}`));
    const out = await s.outputs();
    assert.equal(out.kernels.k1.after, release, JSON.stringify(out.kernels));
    pingsBothWays();
    // Repaired: a refresh now finds nothing, and reboots nothing.
    const settled = bootId();
    const again = await s.pulumi(["up", "--refresh", "--expect-no-changes", "--yes", "--skip-preview"]);
    timings.refreshAfterRepair = again.seconds;
    assert.equal(again.code, 0, explain(again));
    assert.equal(bootId(), settled);
});

test("destroy: no tunnel state on k1, which stays on 6.12 without a reboot", async () => {
    const boot = bootId();
    const boots = consoleBoots().length;
    const r = await stacks.upgrade.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = r.seconds;
    const k1 = k1Objects();
    assert.match(k1, /^6\.12\.\d+/, k1);
    assert.doesNotMatch(k1, /ftok2/, k1);
    assert.match(k1, /^fou:\nfiles:\n/m, `no FOU port, nothing in /var/lib/fou-tunnel:\n${k1}`);
    assert.match(k1, /ls: cannot access '\/var\/lib\/fou-tunnel': No such file or directory/, k1);
    assert.match(k1, /units:\n$/, k1);
    assert.equal(bootId(), boot, "the destroy did not reboot k1");
    assert.equal(consoleBoots().length, boots);
    // The repository line stays: the kernel's updates come from it (docs/topology.md).
    assert.match(ssh(key, K1, `cat /etc/apt/sources.list.d/${APT_NAME}.list`), /bookworm-fou main/);
    const k2 = ssh(key, K2, "ip -o link show; ip fou show 2>/dev/null; ls /var/lib/fou-tunnel 2>&1 || true");
    assert.doesNotMatch(k2, /ftok1|port 5555/, k2);
    assert.match(k2, /No such file or directory/, k2);
});
