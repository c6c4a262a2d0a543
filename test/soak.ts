/**
 * Day two on real VMs: what the day-two test and the fault soak share, and the soak itself.
 *
 * The soak (`npm run soak`, not part of `npm test`): RUNS times (default 10), a `pulumi up` of
 * the guide is killed with SIGINT or SIGKILL at a random moment (seeded; the seed is printed and
 * `SOAK_SEED=<n>` repeats a soak), then recovered the way docs/day-two.md says (`scripts/up.sh`,
 * which clears a stale lock and pending creates and runs `pulumi up --refresh`); each run must
 * end converged: every resource in the state, pings both ways through the tunnel, the stack's
 * verification output, one qemu per VM and nothing else of the stack's on this machine. Every
 * other run starts from nothing (the stack destroyed), the rest from a stack that is up, with one
 * VM's qemu killed first, so the interrupted up is one that boots a VM again. One line per run,
 * then `N/N converged`; exit 1 otherwise. Needs the test network (198.51.100.0/24) free and,
 * like every VM test here, runs under `flock /tmp/fou-vm.lock`.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { localNames } from "../hosts/local";
import { pingAndCapture, PulumiResult, REPO, routed, TestStack } from "./integration/harness";

const run = promisify(execFile);

/** The guide's topology on the local VMs, as the dev stack has it. */
export const GUIDE_CONFIG = { topology: "topologies/guide.yaml" };
export const K1 = "198.51.100.151";
export const K2 = "198.51.100.152";
export const VM_NAMES = ["k1", "k2"];

/** TestStack keeps the environment of its backend private; the runs below need it for their own processes. */
export function stackEnv(stack: TestStack): NodeJS.ProcessEnv {
    return stack["env"];
}

/** This machine's names of the stack's bridge, taps and run directory. */
export function namesOf(stack: TestStack) {
    const n = VM_NAMES.map((_, i) => localNames(`fou-tunnel/${stack.name}`, i));
    return { bridge: n[0].bridge, taps: n.map((x) => x.tap), runDir: n[0].runDir };
}

/** Command line of a process as its words; undefined when it is gone, a zombie or a kernel thread. */
function cmdline(pid: number): string[] | undefined {
    try {
        const words = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((w) => w !== "");
        return words.length > 0 ? words : undefined;
    } catch {
        return undefined;
    }
}

function pids(): number[] {
    return readdirSync("/proc")
        .filter((d) => /^\d+$/.test(d))
        .map(Number);
}

/** PIDs of qemu processes whose pidfile lies in DIR (the stack's run directory): the stack's VMs. */
export function qemuPids(runDir: string): Record<string, number> {
    const found: Record<string, number> = {};
    for (const pid of pids()) {
        const args = cmdline(pid);
        if (!args || !path.basename(args[0]).startsWith("qemu-system")) continue;
        const pf = args[args.indexOf("-pidfile") + 1] ?? "";
        if (pf.startsWith(`${runDir}/`)) {
            found[path.basename(path.dirname(pf))] = pid;
        }
    }
    return found;
}

/** The `pulumi` process (not its plugins) running for this stack's backend, if any. */
export function pulumiPid(stack: TestStack): number | undefined {
    const want = `PULUMI_BACKEND_URL=file://${stack.dir}`;
    for (const pid of pids()) {
        const args = cmdline(pid);
        if (!args || path.basename(args[0]) !== "pulumi") continue;
        try {
            if (readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(want)) return pid;
        } catch {
            // gone meanwhile
        }
    }
    return undefined;
}

/**
 * Processes with this stack's backend in their environment, other than its VMs' qemu (which
 * inherit it from vm.sh): a run's CLI, language host, plugins and scripts.
 */
export function backendProcesses(stack: TestStack): { pid: number; args: string }[] {
    const want = `PULUMI_BACKEND_URL=file://${stack.dir}`;
    const found: { pid: number; args: string }[] = [];
    for (const pid of pids()) {
        const args = cmdline(pid);
        if (pid === process.pid || !args || path.basename(args[0]).startsWith("qemu-system")) continue;
        try {
            if (readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(want)) {
                found.push({ pid, args: args.join(" ").slice(0, 120) });
            }
        } catch {
            // gone meanwhile
        }
    }
    return found;
}

/** Kills the stack's VM NAME the hard way (its qemu, by PID), as a crash would; returns the PID. */
export async function killVm(stack: TestStack, name: string): Promise<number> {
    const pid = qemuPids(namesOf(stack).runDir)[name];
    assert.ok(pid, `no qemu of ${name} runs`);
    process.kill(pid, "SIGKILL");
    for (let i = 0; i < 100 && cmdline(pid); i++) await sleep(100);
    assert.equal(cmdline(pid), undefined, `qemu ${pid} still runs`);
    return pid;
}

/** What a reboot of this machine takes: every qemu, tap and the bridge of the stack, and its run directory. */
export async function simulateReboot(stack: TestStack): Promise<void> {
    const n = namesOf(stack);
    for (const name of Object.keys(qemuPids(n.runDir))) await killVm(stack, name);
    for (const link of [...n.taps, n.bridge]) {
        if (existsSync(`/sys/class/net/${link}`)) execFileSync("ip", ["link", "del", "dev", link]);
    }
    execFileSync("rm", ["-rf", "--one-file-system", n.runDir]);
}

/** Everything of the stack left on this machine: qemu, taps, bridge, route, run directory, a Pulumi lock. */
export function leftovers(stack: TestStack): string[] {
    const n = namesOf(stack);
    const left: string[] = [];
    for (const [name, pid] of Object.entries(qemuPids(n.runDir))) left.push(`qemu ${pid} (${name})`);
    for (const link of [...n.taps, n.bridge]) if (existsSync(`/sys/class/net/${link}`)) left.push(`link ${link}`);
    if (routed("198.51.100.0/24")) left.push("a route to 198.51.100.0/24");
    if (existsSync(n.runDir)) left.push(`directory ${n.runDir}`);
    left.push(...locks(stack).map((l) => `lock ${l}`));
    return left;
}

/** The stack's lock files in its (file) backend. */
export function locks(stack: TestStack): string[] {
    const dir = path.join(stack.dir, ".pulumi", "locks");
    if (!existsSync(dir)) return [];
    return execFileSync("find", [dir, "-type", "f", "-path", `*/${stack.name}/*`, "-name", "*.json"], { encoding: "utf8" }).split("\n").filter((l) => l !== "");
}

/** Pending operations in the stack's state (what a killed run was doing). */
export async function pendingOperations(stack: TestStack): Promise<{ type: string; urn: string }[]> {
    const r = await stack.ok(["stack", "export"]);
    const ops = (JSON.parse(r.stdout).deployment?.pending_operations ?? []) as { type: string; resource: { urn: string } }[];
    return ops.map((o) => ({ type: o.type, urn: o.resource.urn }));
}

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

/**
 * Converged: the state has no pending operation, `up --expect-no-changes` finds nothing to do,
 * the stack's verification saw every ping answered and UDP both ways from each end, pings cross the
 * tunnel both ways with UDP to port 5555 on the receiver's wire, and this machine runs exactly
 * one qemu per VM. Throws with what is wrong.
 */
export async function assertConverged(stack: TestStack): Promise<{ key: string; pids: Record<string, number> }> {
    assert.deepEqual(await pendingOperations(stack), []);
    const out = await stack.outputs();
    assert.equal(out.verification.length, 2, JSON.stringify(out.verification));
    for (const v of out.verification) {
        // (the check's own ping count is the components' business; every ping it sent came back)
        assert.ok(v.sent >= 2 && v.received === v.sent, JSON.stringify(v));
        assert.ok(v.udpToPeer >= v.sent && v.udpFromPeer >= v.sent, JSON.stringify(v));
    }
    const key = out.sshPrivateKey as string;
    for (const [from, fg, to, tg] of [
        [K1, "10.10.10.1", K2, "10.10.10.2"],
        [K2, "10.10.10.2", K1, "10.10.10.1"],
    ]) {
        const { ping, cap } = pingAndCapture(key, from, fg, to, tg, 5555);
        assert.match(ping, /3 packets transmitted, 3 received/);
        assert.ok(cap.includes(`IP ${from}.`) && cap.includes(`> ${to}.5555: UDP`), cap);
    }
    const p = qemuPids(namesOf(stack).runDir);
    assert.deepEqual(Object.keys(p).sort(), VM_NAMES);
    const again = await stack.pulumi(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    assert.equal(again.code, 0, `a second up changes something:\n${again.stdout}\n${again.stderr}`);
    return { key, pids: p };
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

/** A small seeded generator (mulberry32): the same seed, the same soak. */
export function random(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

async function soak(): Promise<number> {
    const runs = Number(process.env.SOAK_RUNS ?? 10);
    const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rnd = random(seed);
    console.log(`soak: ${runs} runs, seed ${seed} (SOAK_SEED=${seed} repeats it)`);
    if (routed("198.51.100.0/24")) {
        console.log("soak: 198.51.100.0/24 is already routed on this machine (a stack is up?); not starting");
        return 2;
    }
    const stack = new TestStack("soak");
    let ok = 0;
    let interruptedRuns = 0;
    try {
        await stack.init(GUIDE_CONFIG);
        for (let i = 1; i <= runs; i++) {
            const kind = rnd();
            const signal = kind < 0.4 ? "SIGINT" : "SIGKILL";
            const everything = kind >= 0.7; // SIGKILL of every process of the run, not only the CLI
            const fresh = i % 2 === 1;
            // Measured here: an up from nothing takes 36-60 s, one that boots k2 again 30-50 s.
            const ms = 2000 + Math.floor(rnd() * (fresh ? 48_000 : 33_000));
            const started = Date.now();
            let line = `run ${i}/${runs}: ${fresh ? "from nothing" : "k2 killed, then up"}, ${signal}${everything ? " to all its processes" : ""} at ${(ms / 1000).toFixed(1)} s`;
            try {
                if (fresh) {
                    await stack.ok(["destroy", "--yes", "--skip-preview"]);
                } else {
                    await killVm(stack, "k2");
                    await stack.ok(["refresh", "--yes", "--skip-preview"]);
                }
                const { result, sentAt } = await interruptedUp(stack, signal, { kind: "after", ms }, everything);
                line += sentAt === undefined ? " (the up had ended: not interrupted)" : ` (up exit ${result.code})`;
                if (sentAt !== undefined) interruptedRuns++;
                const pend = (await pendingOperations(stack)).length;
                const lock = locks(stack).length;
                const rec = await upSh(stack);
                if (rec.code !== 0) throw new Error(`scripts/up.sh failed:\n${rec.stdout.slice(-3000)}\n${rec.stderr.slice(-2000)}`);
                await assertConverged(stack);
                ok++;
                line += `; left ${pend} pending, ${lock} lock; up.sh ${rec.seconds.toFixed(0)} s; converged (${((Date.now() - started) / 1000).toFixed(0)} s)`;
            } catch (e) {
                line += `; NOT converged: ${String(e).split("\n").slice(0, 12).join("\n    ")}`;
                // leave the next run a clean start
                await upSh(stack);
            }
            console.log(line);
        }
    } finally {
        const d = await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
        const left = leftovers(stack);
        console.log(`soak: destroy ${d.code === 0 ? "ok" : "FAILED"} in ${d.seconds.toFixed(0)} s; left on this machine: ${left.length ? left.join(", ") : "nothing"}`);
        await stack.remove();
    }
    console.log(`${ok}/${runs} converged (seed ${seed}; ${interruptedRuns} of the ups were interrupted, the others had ended)`);
    return ok === runs ? 0 : 1;
}

if (require.main === module) {
    soak().then(
        (code) => process.exit(code),
        (e) => {
            console.error(e);
            process.exit(1);
        },
    );
}
