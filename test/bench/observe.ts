/**
 * What the bench watches besides wall clocks: the SSH sessions each VM's sshd accepts (from its
 * journal), the qemu processes' peak memory, and what a destroyed stack left on this machine.
 */
import { ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";

/** sshd's line for an accepted login (one per SSH connection): its client port. */
const ACCEPTED = /^Accepted \S+ for \S+ from \S+ port (\d+)\b/;

/**
 * Follows one VM's sshd journal over an SSH connection of its own, from the VM's boot on
 * (`journalctl -b -f --no-tail -u ssh`), and counts the logins sshd accepted, leaving out the
 * watch's own (told apart by its client port, which the remote shell reads from $SSH_CLIENT).
 * A count taken between two steps, after the log went quiet, is exact: nothing but Pulumi logs in
 * meanwhile. The watch ends when the VM goes; stop() ends it earlier.
 */
export class SessionWatch {
    private readonly child: ChildProcess;
    private readonly ports: number[] = [];
    private ownPort?: number;
    private ready?: () => void;
    private readonly readyP: Promise<void>;
    lastLineAt = Date.now();
    ended = false;
    stderr = "";

    constructor(
        readonly host: string,
        readonly address: string,
        keyFile: string,
    ) {
        this.readyP = new Promise((r) => (this.ready = r));
        this.child = spawn(
            "ssh",
            [
                "-i", keyFile,
                "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=15",
                "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3",
                `root@${address}`,
                'echo "fou-bench-watch $SSH_CLIENT"; exec journalctl -b -f --no-tail -u ssh -o cat',
            ],
            { stdio: ["ignore", "pipe", "pipe"] },
        );
        createInterface({ input: this.child.stdout! }).on("line", (line) => {
            this.lastLineAt = Date.now();
            const own = /^fou-bench-watch \S+ (\d+) /.exec(line);
            if (own && this.ownPort === undefined) {
                this.ownPort = Number(own[1]);
                this.ready!();
                return;
            }
            const m = ACCEPTED.exec(line);
            if (m) this.ports.push(Number(m[1]));
        });
        this.child.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString("utf8")));
        this.child.on("close", () => {
            this.ended = true;
            this.ready!();
        });
    }

    /** Resolves once the watch's login is known (or the watch ended: then throws). */
    async started(timeoutMs = 60_000): Promise<void> {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.readyP, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
        clearTimeout(timer);
        if (this.ownPort === undefined) {
            throw new Error(`cannot follow sshd's journal on ${this.host} (${this.address}): ${this.stderr.trim() || "no answer"}`);
        }
    }

    /** Logins accepted since the VM booted, other than this watch's. */
    count(): number {
        return this.ports.filter((p) => p !== this.ownPort).length;
    }

    stop(): void {
        if (!this.ended && this.child.pid !== undefined) {
            try {
                process.kill(this.child.pid, "SIGTERM");
            } catch {
                // gone meanwhile
            }
        }
    }
}

/** Waits until no watch has read a line for quietMs (at most maxMs). */
export async function quiet(watches: readonly SessionWatch[], quietMs = 1500, maxMs = 20_000): Promise<void> {
    const until = Date.now() + maxMs;
    while (Date.now() < until) {
        const last = Math.max(0, ...watches.map((w) => w.lastLineAt));
        if (Date.now() - last >= quietMs) return;
        await new Promise((r) => setTimeout(r, 200));
    }
}

/** Command line of a process as its words (none for a kernel thread), or undefined when it is gone. */
function cmdline(pid: number): string[] | undefined {
    try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((w) => w !== "");
    } catch {
        return undefined;
    }
}

/** A qemu process's peak resident memory (VmHWM) in MiB; undefined when PID is not a running qemu. */
export function qemuPeakMiB(pid: number): number | undefined {
    const args = cmdline(pid);
    if (!args || args.length === 0 || !path.basename(args[0]).startsWith("qemu-system")) return undefined;
    try {
        const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
        return kb === undefined ? undefined : Number(kb) / 1024;
    } catch {
        return undefined;
    }
}

/** PIDs of the qemu processes whose -pidfile lies under RUNDIR (a stack's VMs). */
export function qemusUnder(runDir: string): number[] {
    return readdirSync("/proc")
        .filter((d) => /^\d+$/.test(d))
        .map(Number)
        .filter((pid) => {
            const args = cmdline(pid);
            if (!args || args.length === 0 || !path.basename(args[0]).startsWith("qemu-system")) return false;
            const i = args.indexOf("-pidfile");
            return i >= 0 && (args[i + 1] ?? "").startsWith(`${runDir}/`);
        });
}

/** What a destroyed local stack left on this machine: qemu processes, its taps and bridge, its run directory. */
export function leftovers(names: { bridge: string; tap: string; runDir: string }): string[] {
    const tapOf = new RegExp(`^${names.tap.replace(/^fou\d+-/, "fou\\d+-")}$`);
    return [
        ...qemusUnder(names.runDir).map((pid) => `qemu ${pid}`),
        ...readdirSync("/sys/class/net")
            .filter((l) => l === names.bridge || tapOf.test(l))
            .map((l) => `link ${l}`),
        ...(existsSync(names.runDir) ? [`directory ${names.runDir}`] : []),
    ];
}
