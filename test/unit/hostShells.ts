/**
 * The shells a host script meets: dash (`/bin/sh` on Debian and Ubuntu, so every step run through
 * `sudo -n /bin/sh`), bash (root's login shell on most servers) and busybox `sh` (small images,
 * initramfs tools). Unit tests that run host scripts run them under each of the three, so a
 * construct one of them reads differently (dash's `read` of a `/proc/sys` file, say) fails a test
 * instead of a user's `up`.
 */
import { spawnSync } from "node:child_process";

export interface HostShell {
    /** As test names show it: `dash`, `bash`, `busybox sh`. */
    readonly name: string;
    /** The program and the arguments before `-c SCRIPT`. */
    readonly argv: readonly [string, ...string[]];
}

export const HOST_SHELLS: readonly HostShell[] = [
    { name: "dash", argv: ["dash"] },
    { name: "bash", argv: ["bash", "--norc"] },
    { name: "busybox sh", argv: ["busybox", "sh"] },
];

export interface ShellRun {
    readonly stdout: string;
    readonly stderr: string;
    /** The exit status; a signal or a failure to start is a test error, never a status. */
    readonly code: number;
}

export interface ShellRunOptions {
    readonly cwd?: string;
    readonly env?: NodeJS.ProcessEnv;
    readonly input?: string;
    readonly timeoutMs?: number;
}

/** Runs `SHELL -c TEXT` and returns what it printed and its status. */
export function runIn(shell: HostShell, text: string, opts: ShellRunOptions = {}): ShellRun {
    const [prog, ...pre] = shell.argv;
    const r = spawnSync(prog, [...pre, "-c", text], {
        encoding: "utf8",
        cwd: opts.cwd,
        env: opts.env,
        input: opts.input ?? "",
        timeout: opts.timeoutMs ?? 30_000,
    });
    if (r.error) throw new Error(`${shell.name}: could not run: ${r.error.message}`);
    if (r.status === null) throw new Error(`${shell.name}: ended by ${r.signal}\n${r.stdout}\n${r.stderr}`);
    return { stdout: r.stdout, stderr: r.stderr, code: r.status };
}

/**
 * Runs a script that changes nothing outside itself under every shell and returns the first
 * shell's result, after checking that the others printed the same stdout and exited the same.
 */
export function runInAll(text: string, opts: ShellRunOptions = {}): ShellRun {
    const [first, ...rest] = HOST_SHELLS.map((s) => ({ shell: s, run: runIn(s, text, opts) }));
    for (const { shell, run } of rest) {
        if (run.code !== first.run.code || run.stdout !== first.run.stdout) {
            throw new Error(
                `${shell.name} and ${first.shell.name} disagree:\n` +
                    `${first.shell.name}: exit ${first.run.code}\n${first.run.stdout}${first.run.stderr}\n` +
                    `${shell.name}: exit ${run.code}\n${run.stdout}${run.stderr}`,
            );
        }
    }
    return first.run;
}
