/** An interrupted `pulumi up` and the documented way back from it, `scripts/up.sh`. */
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { PulumiResult, REPO, TestStack } from "../integration/harness";
import { namesOf, sleep, stackEnv } from "./guide";
import { backendProcesses, pulumiPid, qemuPids } from "./processes";

const run = promisify(execFile);

/**
 * `scripts/up.sh` for this stack: the documented way back (lock, pending creates, `up --refresh`).
 * Its output also goes to `$FOU_UPSH_LOG.<n>` when FOU_UPSH_LOG is set (for a look afterwards).
 */
let upShRuns = 0;
export async function upSh(stack: TestStack): Promise<PulumiResult> {
    const r = await upShRun(stack);
    if (process.env.FOU_UPSH_LOG) {
        writeFileSync(`${process.env.FOU_UPSH_LOG}.${++upShRuns}`, `${r.stdout}\n${r.stderr}`);
    }
    return r;
}

async function upShRun(stack: TestStack): Promise<PulumiResult> {
    const started = Date.now();
    try {
        const r = await run(path.join(REPO, "scripts", "up.sh"), ["--config-file", stack.configFile], {
            cwd: REPO,
            env: { ...stackEnv(stack), FOU_STACK: stack.name },
            timeout: 20 * 60_000,
            maxBuffer: 64 * 1024 * 1024,
        });
        return { stdout: r.stdout, stderr: r.stderr, code: 0, seconds: (Date.now() - started) / 1000 };
    } catch (e: any) {
        return { stdout: e.stdout ?? "", stderr: e.stderr ?? String(e), code: e.code ?? 1, seconds: (Date.now() - started) / 1000 };
    }
}

export type Moment = { kind: "vm-boot"; extraMs: number } | { kind: "after"; ms: number };

/**
 * Runs `pulumi up` and kills it with SIGNAL at MOMENT: while a VM boots (a qemu of the stack
 * runs that has not answered SSH yet, plus `extraMs`), or MS after the start. With `everything`
 * (SIGKILL only), every process of the run goes at once (the CLI, its plugins, vm.sh: what the
 * OOM killer or a lost session may do), leaving its qemus. Returns how the run ended and when
 * the signal went (seconds after the start; undefined if the up ended first).
 */
export async function interruptedUp(stack: TestStack, signal: "SIGINT" | "SIGKILL", moment: Moment, everything = false) {
    const started = Date.now();
    const up = stack.pulumi(["up", "--yes", "--skip-preview"]);
    let done = false;
    void up.then(() => (done = true));
    const n = namesOf(stack);
    const booting = () =>
        Object.keys(qemuPids(n.runDir)).some((name) => !existsSync(path.join(n.runDir, name, "vm.json")));
    let sentAt: number | undefined;
    try {
        if (moment.kind === "vm-boot") {
            while (!done && !booting()) await sleep(100);
            await sleep(moment.extraMs);
        } else {
            while (!done && Date.now() - started < moment.ms) await sleep(100);
        }
        const pid = pulumiPid(stack);
        if (!done && pid !== undefined) {
            const victims = everything ? backendProcesses(stack).map((p) => p.pid) : [pid];
            for (const v of victims) {
                try {
                    process.kill(v, signal);
                } catch {
                    // already gone
                }
            }
            sentAt = (Date.now() - started) / 1000;
        }
    } finally {
        if (sentAt === undefined && !done) {
            // something above failed: no up may outlive the test unseen
            const pid = pulumiPid(stack);
            if (pid !== undefined) process.kill(pid, "SIGINT");
        }
    }
    const result = await up;
    return { result, sentAt };
}
