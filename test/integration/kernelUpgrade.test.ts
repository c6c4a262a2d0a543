/**
 * Issue #18's proof: a host whose kernel has no fou really upgrades and reboots. k1 is a VM that
 * boots like an ordinary Debian 12 host, through SeaBIOS and GRUB from its own disk
 * (vm/disk/disk-vm.sh), on bookworm's 6.1 kernel with fou.ko deleted, reached as `admin` with
 * passwordless sudo; k2 is an ordinary project VM (vm/vm.sh: a current kernel with fou), reached
 * as root. A signed apt repository with linux-image-6.12-amd64 (vm/disk/kernel-repo.sh) is served
 * on the test bridge (vm/disk/serve-repo.sh): k1 has no route to any other mirror.
 *
 * - Without `kernel:` the up fails at k1's kernel check with the guide's message (no fou module,
 *   the fix for Debian) and changes nothing on k1 (host snapshot; no 6.12 package, no state).
 * - With `kernel: {upgrade: true, package, repository, key}` on k1 the up installs 6.12 from the
 *   repository, reboots k1 exactly once (a new boot id, two kernel boots on its serial console,
 *   the same qemu process), comes back on 6.12 with fou, and builds and verifies the tunnel
 *   (stack output `verification`, and pings across it with the UDP seen on the peer's port).
 *   Stack output `kernels` shows k1's before (6.1) and after (6.12).
 * - A second up is a no-op (`--expect-no-changes`) and reboots nothing.
 * - The destroy removes every tunnel object and state file from k1, and leaves it on 6.12 with the
 *   repository line and key (docs/topology.md, "Destroy leaves the kernel").
 *
 * On a fresh machine the `before` builds the disk image and the repository first (minutes; both
 * are cached under $FOU_CACHE/disk afterwards). The test stops the VMs, the server and the bridge
 * itself. Run under the VM lock: flock /tmp/fou-vm.lock …
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import YAML from "yaml";
import { APT_NAME } from "../../components/kernelUpgradeScripts";
import { PulumiResult, REPO, TestStack, hostSnapshot, pingAndCapture, routed, snapshotDiff, ssh } from "./harness";

const run = promisify(execFile);
const HOST_IP = "198.51.100.1";
const NET = `${HOST_IP}/24`;
const BRIDGE = "fku-br";
const K1 = "198.51.100.181";
const K2 = "198.51.100.182";
const DISK = path.join(REPO, "vm", "disk");
const dir = mkdtempSync(path.join(tmpdir(), "fou-kernelupgrade-"));
const VM1 = { name: "k1", address: K1, tap: "fku-k1", mac: "52:54:00:fc:01:81", state: path.join(dir, "vm-k1") };
const VM2 = { name: "k2", address: K2, tap: "fku-k2", mac: "52:54:00:fc:01:82", state: path.join(dir, "vm-k2") };
const SERVER_STATE = path.join(dir, "server");
const PACKAGE = "linux-image-6.12-amd64";
/** The keyring the install writes the repository's key to (components/kernelUpgradeScripts.ts). */
const KEYRING = `/etc/apt/keyrings/${APT_NAME}.gpg`;
const timings: Record<string, number> = {};
const stacks = { plain: new TestStack("itest-kup-plain"), upgrade: new TestStack("itest-kup") };

let key = ""; // root on both VMs, and admin on k1
const hostKeys: Record<string, string> = {};
let image = "";
let repo = "";
let port = 0;
let bridgeUp = false;
let k1Baseline = "";
let qemuPid = 0;

function script(file: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
    return run(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
}

/** TEXT as a regular expression that matches only itself (a release has `.` and `+`). */
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The last stdout line of a script (the vm/disk scripts print their result there). */
const lastLine = (out: string) => out.trim().split("\n").pop()!;

/** SSH as admin on k1: a login that is not root, with sudo for what needs it. */
function asAdmin(command: string): string {
    return execFileSync(
        "ssh",
        ["-i", path.join(dir, "id"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", `admin@${K1}`, command],
        { encoding: "utf8", timeout: 60_000 },
    );
}

const bootId = () => ssh(key, K1, "cat /proc/sys/kernel/random/boot_id").trim();
/** Kernels k1 has booted since qemu started: one `Linux version` line per boot on its serial console. */
const consoleBoots = () => (readFileSync(path.join(VM1.state, "console.log"), "latin1").match(/Linux version \d+\.\d+\S*/g) ?? []);

/** A port nothing listens on at the bridge address. */
function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen(0, HOST_IP, () => {
            const p = (s.address() as { port: number }).port;
            s.close(() => resolve(p));
        });
    });
}

/** The guide's k1-k2 tunnel (ipip over FOU 5555, GWIPs 10.10.10.1/.2, ftok2/ftok1), k1 as admin, k2 as root. */
function topologyFile(name: string, kernel?: Record<string, unknown>): string {
    const file = path.join(dir, `${name}.yaml`);
    const k1: Record<string, unknown> = { name: "k1", ssh: { address: K1, user: "admin", hostKey: hostKeys.k1 } };
    if (kernel) k1.kernel = kernel;
    writeFileSync(file, YAML.stringify({ hosts: [k1, { name: "k2", ssh: { address: K2, hostKey: hostKeys.k2 } }], tunnels: [{ hosts: ["k1", "k2"] }] }));
    return file;
}

async function initStack(s: TestStack, topology: string): Promise<void> {
    await s.init({ hosts: "ssh", topology });
    s.setSecret("sshPrivateKey", key);
}

/** Seconds Pulumi's progress shows for a resource's create (`NAME created (231s)`), if shown. */
function createdSeconds(r: PulumiResult, name: string): number | undefined {
    const m = new RegExp(`${name}\\s+created \\((\\d+(?:\\.\\d+)?)s\\)`).exec(r.stdout);
    return m ? Number(m[1]) : undefined;
}

/** What a stack would leave on k1, in one look. */
const k1Objects = () => ssh(key, K1, "uname -r; echo links:; ip -o link show | awk -F': ' '{print $2}'; echo fou:; ip fou show 2>/dev/null; echo files:; ls -a /var/lib/fou-tunnel 2>&1; echo units:; ls /etc/systemd/system | grep fou-tunnel || true");

before(async () => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed on this machine (another VM run? take the lock: flock /tmp/fou-vm.lock)");
    // The disk image and the repository: cached after the first build (debootstrap ~3 min, 107 MB download).
    let t = Date.now();
    image = lastLine((await script(path.join(DISK, "build-disk-image.sh"), [], 40 * 60_000)).stdout);
    repo = lastLine((await script(path.join(DISK, "kernel-repo.sh"), ["--image", image], 20 * 60_000)).stdout);
    timings.imageAndRepo = (Date.now() - t) / 1000;
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "admin@fou-kernel-test", "-f", path.join(dir, "id")]);
    key = readFileSync(path.join(dir, "id"), "utf8");
    const pub = readFileSync(path.join(dir, "id.pub"), "utf8").trim();
    execFileSync(path.join(REPO, "vm", "net.sh"), ["up", "--bridge", BRIDGE, "--address", NET], { stdio: ["ignore", "ignore", "pipe"] });
    bridgeUp = true;
    port = await freePort();
    await script(path.join(DISK, "serve-repo.sh"), ["start", "--dir", repo, "--address", HOST_IP, "--port", String(port), "--state", SERVER_STATE], 60_000);
    t = Date.now();
    const common = (v: typeof VM1) => ["start", "--name", v.name, "--address", `${v.address}/24`, "--bridge", BRIDGE, "--tap", v.tap, "--mac", v.mac, "--state-dir", v.state, "--authorized-key", pub];
    const [r1, r2] = await Promise.all([
        script(path.join(DISK, "disk-vm.sh"), [...common(VM1), "--image", image, "--timeout", "300"], 360_000),
        script(path.join(REPO, "vm", "vm.sh"), common(VM2), 240_000),
    ]);
    timings.bootBoth = (Date.now() - t) / 1000;
    const j1 = JSON.parse(lastLine(r1.stdout));
    const j2 = JSON.parse(lastLine(r2.stdout));
    hostKeys.k1 = j1.hostKey;
    hostKeys.k2 = j2.hostKey;
    qemuPid = j1.pid;
    timings.bootK1 = j1.bootSeconds;
    timings.bootK2 = j2.bootSeconds;
});

after(async () => {
    // Whatever happened above: the stacks' undo, then the machines, the server, the bridge, the files.
    for (const s of Object.values(stacks)) {
        await s.pulumi(["destroy", "--yes", "--skip-preview"]);
        await s.remove();
    }
    await script(path.join(DISK, "disk-vm.sh"), ["stop", "--state-dir", VM1.state], 120_000).catch((e) => console.error(`disk-vm.sh stop k1: ${e}`));
    await script(path.join(REPO, "vm", "vm.sh"), ["stop", "--state-dir", VM2.state, "--tap", VM2.tap], 120_000).catch((e) => console.error(`vm.sh stop k2: ${e}`));
    await script(path.join(DISK, "serve-repo.sh"), ["stop", "--state", SERVER_STATE], 60_000).catch((e) => console.error(`serve-repo.sh stop: ${e}`));
    if (bridgeUp) {
        try {
            execFileSync(path.join(REPO, "vm", "net.sh"), ["down", "--bridge", BRIDGE], { stdio: "ignore" });
        } catch (e) {
            console.error(`net.sh down ${BRIDGE}: ${e}`);
        }
    }
    rmSync(dir, { recursive: true, force: true });
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
    await initStack(s, topologyFile("plain"));
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
    const kernel = {
        upgrade: true,
        package: PACKAGE,
        repository: `deb [signed-by=${KEYRING}] http://${HOST_IP}:${port}/ bookworm-fou main`,
        key: readFileSync(path.join(repo, "key.asc"), "utf8"),
    };
    await initStack(s, topologyFile("upgrade", kernel));
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
    assert.equal(JSON.parse(lastLine((await script(path.join(DISK, "disk-vm.sh"), ["status", "--state-dir", VM1.state], 30_000)).stdout)).pid, qemuPid);
    const release = asAdmin("uname -r").trim();
    assert.match(release, /^6\.12\.\d+/);
    assert.match(asAdmin("sudo modinfo --field=depends fou"), /ip_tunnel/);

    // The install's own record on k1, and the repository it used.
    const state = ssh(key, K1, "cat /var/lib/fou-tunnel/fou-tunnel.itest-kup/*-install.kernel");
    assert.match(state, new RegExp(`^pending=0\\nold=6\\.1\\.\\S+\\nbootId=${bootBefore}\\nnew=${escape(release)}$`, "m"), state);
    const apt = ssh(key, K1, `cat /etc/apt/sources.list.d/${APT_NAME}.list; ls /etc/apt/keyrings; dpkg-query -W -f='\${Package} \${Status}\\n' '${PACKAGE}'`);
    assert.match(apt, new RegExp(`^deb \\[signed-by=/etc/apt/keyrings/${APT_NAME}\\.(gpg|asc)\\] http://${escape(HOST_IP)}:${port}/ bookworm-fou main$`, "m"), apt);
    assert.match(apt, new RegExp(`^${PACKAGE} install ok installed$`, "m"), apt);
    assert.match(readFileSync(`${SERVER_STATE}.log`, "utf8"), /linux-image-6\.12/, "apt fetched the kernel from the served repository");

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
    for (const [from, fg, to, tg] of [
        [K1, "10.10.10.1", K2, "10.10.10.2"],
        [K2, "10.10.10.2", K1, "10.10.10.1"],
    ]) {
        const { ping, cap } = pingAndCapture(key, from, fg, to, tg, 5555);
        assert.match(ping, /3 packets transmitted, 3 received/);
        assert.ok(cap.includes(`> ${to}.5555: UDP`), cap);
    }
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

test("destroy: no tunnel state on k1, which stays on 6.12 without a reboot", async () => {
    const boot = bootId();
    const r = await stacks.upgrade.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = r.seconds;
    const k1 = k1Objects();
    assert.match(k1, /^6\.12\.\d+/, k1);
    assert.doesNotMatch(k1, /ftok2/, k1);
    assert.match(k1, /^fou:\nfiles:\n/m, `no FOU port, nothing in /var/lib/fou-tunnel:\n${k1}`);
    assert.match(k1, /ls: cannot access '\/var\/lib\/fou-tunnel': No such file or directory/, k1);
    assert.match(k1, /units:\n$/, k1);
    assert.equal(bootId(), boot, "the destroy did not reboot k1");
    assert.equal(consoleBoots().length, 2);
    // The repository line stays: the kernel's updates come from it (docs/topology.md).
    assert.match(ssh(key, K1, `cat /etc/apt/sources.list.d/${APT_NAME}.list`), /bookworm-fou main/);
    const k2 = ssh(key, K2, "ip -o link show; ip fou show 2>/dev/null; ls /var/lib/fou-tunnel 2>&1 || true");
    assert.doesNotMatch(k2, /ftok1|port 5555/, k2);
    assert.match(k2, /No such file or directory/, k2);
});
