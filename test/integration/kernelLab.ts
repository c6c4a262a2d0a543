/**
 * The kernel-upgrade lab, for issue #18's integration test and its benchmark: a host whose kernel
 * has no fou and can really upgrade and reboot. k1 boots like an ordinary Debian 12 host, through
 * SeaBIOS and GRUB from its own disk (vm/disk/disk-vm.sh), on bookworm's 6.1 kernel with fou.ko
 * deleted, reached as `admin` with passwordless sudo; k2 is an ordinary project VM (vm/vm.sh: a
 * current kernel with fou), reached as root. A signed apt repository with linux-image-6.12-amd64
 * (vm/disk/kernel-repo.sh) is served on the test bridge (vm/disk/serve-repo.sh): k1 has no route
 * to any other mirror. The bridge, the admin key, k2 and the teardown are outsideVms.ts's, as for
 * the other tests' VMs outside any stack.
 *
 * On a fresh machine `open` builds the disk image and the repository first (minutes; both are
 * cached under $FOU_CACHE/disk afterwards). Everything runs on 198.51.100.0/24: under the VM
 * lock (flock /tmp/fou-vm.lock …).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import * as path from "node:path";
import YAML from "yaml";
import { APT_NAME } from "../../components/kernelUpgradeScripts";
import { shq } from "../../components/shell";
import { REPO, ssh } from "./harness";
import { assertNetFree, lastLine, OutsideVm, OutsideVms, script } from "./outsideVms";

export const HOST_IP = "198.51.100.1";
const BRIDGE = "fku-br";
export const K1 = "198.51.100.181";
export const K2 = "198.51.100.182";
export const DISK = path.join(REPO, "vm", "disk");
export const PACKAGE = "linux-image-6.12-amd64";
/** The keyring the install writes the repository's key to (components/kernelUpgradeScripts.ts). */
export const KEYRING = `/etc/apt/keyrings/${APT_NAME}.gpg`;

export type LabVm = OutsideVm;

/** TEXT as a regular expression that matches only itself (a release has `.` and `+`). */
export const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

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

export class KernelLab {
    /** The bridge, the admin key, k2 (vm.sh) and the teardown; k1 starts with disk-vm.sh and the same arguments. */
    readonly vms = new OutsideVms({ name: "kernellab", bridge: BRIDGE, keyComment: "admin@fou-kernel-test" });
    readonly dir = this.vms.dir;
    readonly hostKeys = this.vms.hostKeys;
    repo = "";
    port = 0;
    /** k1's qemu (the same process across its reboots). */
    qemuPid = 0;
    vm1: LabVm = this.vm("k1", K1, 1);
    vm2: LabVm = this.vm("k2", K2, 1);
    private image = "";
    private serving = false;

    /** Root on both VMs, and admin on k1. */
    get key(): string {
        return this.vms.key;
    }

    private vm(name: "k1" | "k2", address: string, round: number): LabVm {
        const n = address.split(".").pop()!;
        return this.vms.vm(name, address, `fku-${name}`, `52:54:00:fc:01:${n.slice(-2)}`, `vm-${name}-${round}`);
    }

    /** Builds (or takes from the cache) the disk image and the repository; brings up the bridge and the repository's server. */
    async open(): Promise<{ imageAndRepo: number }> {
        assertNetFree();
        const t = Date.now();
        this.image = lastLine((await script(path.join(DISK, "build-disk-image.sh"), [], 40 * 60_000)).stdout);
        this.repo = lastLine((await script(path.join(DISK, "kernel-repo.sh"), ["--image", this.image], 20 * 60_000)).stdout);
        const imageAndRepo = (Date.now() - t) / 1000;
        this.vms.open();
        this.port = await freePort();
        await script(path.join(DISK, "serve-repo.sh"), ["start", "--dir", this.repo, "--address", HOST_IP, "--port", String(this.port), "--state", this.serverState], 60_000);
        this.serving = true;
        return { imageAndRepo };
    }

    private get serverState(): string {
        return path.join(this.dir, "server");
    }

    /** What the repository's server logged (the requests it answered). */
    serverLog(): string {
        return readFileSync(`${this.serverState}.log`, "utf8");
    }

    /** Boots k1 from a fresh copy of the disk image and k2, both at once (ROUND names their state). */
    async startVms(round = 1): Promise<{ bootBoth: number; bootK1: number; bootK2: number }> {
        this.vm1 = this.vm("k1", K1, round);
        this.vm2 = this.vm("k2", K2, round);
        const t = Date.now();
        const [r1, j2] = await Promise.all([
            script(path.join(DISK, "disk-vm.sh"), [...this.vms.startArgs(this.vm1), "--image", this.image, "--timeout", "300"], 360_000),
            this.vms.startOne(this.vm2),
        ]);
        const bootBoth = (Date.now() - t) / 1000;
        const j1 = this.vms.record(this.vm1, r1.stdout);
        this.qemuPid = j1.pid;
        return { bootBoth, bootK1: j1.bootSeconds, bootK2: j2.bootSeconds };
    }

    /** k1's qemu pid as disk-vm.sh reports it now. */
    async k1Pid(): Promise<number> {
        return JSON.parse(lastLine((await script(path.join(DISK, "disk-vm.sh"), ["status", "--state-dir", this.vm1.state], 30_000)).stdout)).pid;
    }

    /** Stops both VMs; logs, never throws. */
    async stopVms(): Promise<void> {
        await script(path.join(DISK, "disk-vm.sh"), ["stop", "--state-dir", this.vm1.state], 120_000).catch((e) => console.error(`disk-vm.sh stop k1: ${e}`));
        await this.vms.stop(this.vm2, 120_000);
    }

    /** Stops the VMs, the server and the bridge, and removes the lab's files; logs, never throws. */
    async close(): Promise<void> {
        await this.stopVms();
        if (this.serving) {
            await script(path.join(DISK, "serve-repo.sh"), ["stop", "--state", this.serverState], 60_000).catch((e) => console.error(`serve-repo.sh stop: ${e}`));
        }
        await this.vms.close().catch((e) => console.error(`net.sh down ${BRIDGE}: ${e}`));
    }

    /** The topology's `kernel:` block that upgrades k1 from the lab's repository. */
    kernelBlock(): Record<string, unknown> {
        return {
            upgrade: true,
            package: PACKAGE,
            repository: `deb [signed-by=${KEYRING}] http://${HOST_IP}:${this.port}/ bookworm-fou main`,
            key: readFileSync(path.join(this.repo, "key.asc"), "utf8"),
        };
    }

    /** The guide's k1-k2 tunnel (ipip over FOU 5555, GWIPs 10.10.10.1/.2, ftok2/ftok1), k1 as admin, k2 as root. */
    topologyFile(name: string, kernel?: Record<string, unknown>): string {
        const file = path.join(this.dir, `${name}.yaml`);
        const k1: Record<string, unknown> = { name: "k1", ssh: { address: K1, user: "admin", hostKey: this.hostKeys.k1 } };
        if (kernel) k1.kernel = kernel;
        writeFileSync(file, YAML.stringify({ hosts: [k1, { name: "k2", ssh: { address: K2, hostKey: this.hostKeys.k2 } }], tunnels: [{ hosts: ["k1", "k2"] }] }));
        return file;
    }

    /** SSH as admin on k1: a login that is not root, with sudo for what needs it. */
    asAdmin(command: string): string {
        return this.vms.sshAs("admin", K1, command);
    }

    bootId(): string {
        return ssh(this.key, K1, "cat /proc/sys/kernel/random/boot_id").trim();
    }

    /** Kernels k1 has booted since its qemu started: one `Linux version` line per boot on its serial console. */
    consoleBoots(): string[] {
        return readFileSync(path.join(this.vm1.state, "console.log"), "latin1").match(/Linux version \d+\.\d+\S*/g) ?? [];
    }

    /**
     * Reboots k1 once into kernel RELEASE, as a host falls back to an old kernel by itself: GRUB's
     * one-time entry (`grub-reboot`) for that kernel's item of the "Advanced options" submenu, the
     * default left as it is. Returns when k1 answers SSH in a new boot.
     */
    async rebootInto(release: string, timeoutMs = 300_000): Promise<void> {
        const before = this.bootId();
        const entry = ssh(
            this.key,
            K1,
            [
                "set -e",
                "u=$(grub-probe --target=fs_uuid /)",
                `e="gnulinux-"${shq(release)}"-advanced-$u"`,
                'grep -q "\'$e\'" /boot/grub/grub.cfg',
                'grub-reboot "gnulinux-advanced-$u>$e"',
                "systemd-run --on-active=2 --unit=fou-test-reboot systemctl reboot >/dev/null 2>&1",
                'echo "$e"',
            ].join("\n"),
        ).trim();
        if (!entry.includes(release)) throw new Error(`k1: no GRUB entry for ${release}: ${entry}`);
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            await new Promise((r) => setTimeout(r, 2000));
            try {
                if (this.bootId() !== before) return;
            } catch {
                // Down, or not yet answering.
            }
            if (Date.now() > deadline) throw new Error(`k1 did not come back within ${timeoutMs / 1000} s after the reboot into ${release}`);
        }
    }
}
