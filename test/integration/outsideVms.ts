/**
 * VMs outside any stack, as someone's existing servers: a bridge of the test's own on
 * 198.51.100.0/24 (vm/net.sh), an admin key authorized for root on every VM, VMs booted with
 * vm/vm.sh (their host keys taken from its report), logins other than root made on them, and a
 * teardown that stops what it started. Tests of host kind `ssh` (sshHosts, sudoHosts) and the
 * kernel lab (kernelLab.ts, whose disk-booted k1 starts with its own script and these arguments)
 * build on it. Everything runs on 198.51.100.0/24: under the VM lock (flock /tmp/fou-vm.lock …).
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { REPO, routed, ssh } from "./harness";

const run = promisify(execFile);
const NET = "198.51.100.1/24";
const VM_SH = path.join(REPO, "vm", "vm.sh");

/** One VM on the bridge: its name, address (in the /24), tap, MAC and state directory. */
export interface OutsideVm {
    readonly name: string;
    readonly address: string;
    readonly tap: string;
    readonly mac: string;
    readonly state: string;
}

/** What vm.sh (and vm/disk/disk-vm.sh) print as their last line once a VM answers SSH. */
export interface VmReport {
    readonly hostKey: string;
    readonly pid: number;
    readonly bootSeconds: number;
}

/** A login other than root: its key is the admin key; its sudo passwordless or asking for a password. */
export interface Login {
    readonly user: string;
    readonly sudo: "nopasswd" | "password";
}

export interface OutsideVmsOptions {
    /** Names the temporary directory (fou-NAME-…) that holds the key and the VMs' state. */
    readonly name: string;
    /** The test's own bridge (its taps are named by the test too). */
    readonly bridge: string;
    /** The admin key's comment. */
    readonly keyComment?: string;
}

/** The message when the test network is taken: by another run's VMs, or a dev stack. */
export const NET_TAKEN = "198.51.100.0/24 is already routed on this machine (another VM run? take the lock: flock /tmp/fou-vm.lock)";

/** Throws NET_TAKEN when 198.51.100.0/24 is routed on this machine already. */
export function assertNetFree(): void {
    if (routed("198.51.100.0/24")) {
        throw new Error(NET_TAKEN);
    }
}

/** Runs a VM script; rejects with its output when it fails. */
export function script(file: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
    return run(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
}

/** The last stdout line of a script (vm.sh and the vm/disk scripts print their result there). */
export const lastLine = (out: string) => out.trim().split("\n").pop()!;

export class OutsideVms {
    readonly dir: string;
    readonly bridge: string;
    /** The admin key (private), authorized for root on every VM and for each login made. */
    key = "";
    /** Its public half, as given to vm.sh --authorized-key. */
    pub = "";
    /** Each VM's host key, by name, from its start report. */
    readonly hostKeys: Record<string, string> = {};
    private readonly keyComment: string;
    private bridgeUp = false;
    /** VMs started with vm.sh and not stopped yet. */
    private readonly running = new Map<string, OutsideVm>();

    constructor(opts: OutsideVmsOptions) {
        this.dir = mkdtempSync(path.join(tmpdir(), `fou-${opts.name}-`));
        this.bridge = opts.bridge;
        this.keyComment = opts.keyComment ?? "admin@fou-test";
    }

    /** The admin key's file. */
    get keyFile(): string {
        return path.join(this.dir, "id");
    }

    /** A VM on this bridge whose state is under the directory (STATE its name there; vm-NAME by default). */
    vm(name: string, address: string, tap: string, mac: string, state = `vm-${name}`): OutsideVm {
        return { name, address, tap, mac, state: path.join(this.dir, state) };
    }

    /** Refuses a taken test network; makes the admin key; brings up the bridge. */
    open(): void {
        assertNetFree();
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", this.keyComment, "-f", this.keyFile]);
        this.key = readFileSync(this.keyFile, "utf8");
        this.pub = readFileSync(`${this.keyFile}.pub`, "utf8").trim();
        execFileSync(path.join(REPO, "vm", "net.sh"), ["up", "--bridge", this.bridge, "--address", NET], { stdio: ["ignore", "ignore", "pipe"] });
        this.bridgeUp = true;
    }

    /** The `start` arguments vm.sh and disk-vm.sh share: name, address, bridge, tap, MAC, state, the admin key. */
    startArgs(v: OutsideVm): string[] {
        return ["start", "--name", v.name, "--address", `${v.address}/24`, "--bridge", this.bridge, "--tap", v.tap, "--mac", v.mac, "--state-dir", v.state, "--authorized-key", this.pub];
    }

    /** Notes a VM's report (its host key) from a start by vm.sh or another script; returns the report. */
    record(v: OutsideVm, stdout: string): VmReport {
        const report = JSON.parse(lastLine(stdout)) as VmReport;
        this.hostKeys[v.name] = report.hostKey;
        return report;
    }

    /** Boots one VM with vm.sh; resolves with its report once it answers SSH. */
    async startOne(v: OutsideVm): Promise<VmReport> {
        this.running.set(v.name, v);
        return this.record(v, (await script(VM_SH, this.startArgs(v), 240_000)).stdout);
    }

    /** Boots VMS with vm.sh, all at once; resolves with the seconds that took. */
    async start(vms: readonly OutsideVm[]): Promise<number> {
        const started = Date.now();
        await Promise.all(vms.map((v) => this.startOne(v)));
        return (Date.now() - started) / 1000;
    }

    /** `vm.sh status`: resolves when the VM runs, rejects when it does not. */
    async status(v: OutsideVm): Promise<void> {
        await script(VM_SH, ["status", "--state-dir", v.state], 240_000);
    }

    /** Stops one VM started with vm.sh; logs, never throws. */
    async stop(v: OutsideVm, timeoutMs = 240_000): Promise<void> {
        this.running.delete(v.name);
        await script(VM_SH, ["stop", "--state-dir", v.state, "--tap", v.tap], timeoutMs).catch((e) => console.error(`vm.sh stop ${v.name}: ${e}`));
    }

    /**
     * Makes LOGINS on the VM at HOST (as root): each with /bin/sh, the admin key, and a sudoers
     * entry, passwordless or asking for a password. Their password is '*' (none can match) rather
     * than useradd's '!': the test VMs' sshd runs without PAM, and sshd without PAM refuses a key
     * login to an account whose password is locked.
     */
    addLogins(host: string, logins: readonly Login[]): void {
        ssh(
            this.key,
            host,
            [
                "set -e",
                ...logins.flatMap(({ user, sudo }) => [
                    `useradd -m -s /bin/sh -p '*' ${user}; install -d -m 0700 -o ${user} -g ${user} /home/${user}/.ssh`,
                    `install -m 0600 -o ${user} -g ${user} /root/.ssh/authorized_keys /home/${user}/.ssh/authorized_keys`,
                    `echo '${user} ALL=(ALL) ${sudo === "nopasswd" ? "NOPASSWD:" : ""}ALL' > /etc/sudoers.d/${user}; chmod 0440 /etc/sudoers.d/${user}`,
                ]),
            ].join("\n"),
        );
    }

    /** Runs a command on HOST as USER (a login other than root) with the admin key; returns stdout, throws on failure. */
    sshAs(user: string, host: string, command: string): string {
        return execFileSync(
            "ssh",
            ["-i", this.keyFile, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", `${user}@${host}`, command],
            { encoding: "utf8", timeout: 60_000 },
        );
    }

    /**
     * The teardown, whatever happened before: stops the vm.sh VMs still running (logging what
     * fails), takes the bridge down and removes the directory. Throws only when the bridge does
     * not come down, after the rest.
     */
    async close(): Promise<void> {
        for (const v of [...this.running.values()]) {
            await this.stop(v);
        }
        let failed: unknown;
        if (this.bridgeUp) {
            try {
                execFileSync(path.join(REPO, "vm", "net.sh"), ["down", "--bridge", this.bridge], { stdio: "ignore" });
                this.bridgeUp = false;
            } catch (e) {
                failed = e;
            }
        }
        rmSync(this.dir, { recursive: true, force: true });
        if (failed) throw failed;
    }
}
