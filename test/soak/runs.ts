/**
 * The soak's runs: each one destroys the stack or kills a VM, interrupts an up at a seeded random
 * moment, recovers with scripts/up.sh and checks that the stack converged; one line per run.
 */
import { routed, TestStack } from "../integration/harness";
import { assertConverged } from "./converged";
import { GUIDE_CONFIG } from "./guide";
import { killVm } from "./processes";
import { interruptedUp, upSh } from "./recovery";
import { leftovers, locks, pendingOperations } from "./state";

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

/** SOAK_RUNS runs of the guide's stack; the exit code: 0 when every run converged, 1 when not, 2 when the network is taken. */
export async function soak(): Promise<number> {
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
            const r = await soakRun(stack, i, runs, rnd);
            if (r.interrupted) interruptedRuns++;
            if (r.converged) ok++;
            console.log(r.line);
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

/**
 * Run I of RUNS: odd runs start from nothing (the stack destroyed), even ones from the stack up
 * with k2's qemu killed; the up is interrupted, recovered and checked. Returns the run's line.
 */
async function soakRun(stack: TestStack, i: number, runs: number, rnd: () => number): Promise<{ line: string; converged: boolean; interrupted: boolean }> {
    const kind = rnd();
    const signal = kind < 0.4 ? "SIGINT" : "SIGKILL";
    const everything = kind >= 0.7; // SIGKILL of every process of the run, not only the CLI
    const fresh = i % 2 === 1;
    // Measured here: an up from nothing takes 36-60 s, one that boots k2 again 30-50 s.
    const ms = 2000 + Math.floor(rnd() * (fresh ? 48_000 : 33_000));
    const started = Date.now();
    let line = `run ${i}/${runs}: ${fresh ? "from nothing" : "k2 killed, then up"}, ${signal}${everything ? " to all its processes" : ""} at ${(ms / 1000).toFixed(1)} s`;
    let interrupted = false;
    try {
        if (fresh) {
            await stack.ok(["destroy", "--yes", "--skip-preview"]);
        } else {
            await killVm(stack, "k2");
            await stack.ok(["refresh", "--yes", "--skip-preview"]);
        }
        const { result, sentAt } = await interruptedUp(stack, signal, { kind: "after", ms }, everything);
        line += sentAt === undefined ? " (the up had ended: not interrupted)" : ` (up exit ${result.code})`;
        if (sentAt !== undefined) interrupted = true;
        const pend = (await pendingOperations(stack)).length;
        const lock = locks(stack).length;
        const rec = await upSh(stack);
        if (rec.code !== 0) throw new Error(`scripts/up.sh failed:\n${rec.stdout.slice(-3000)}\n${rec.stderr.slice(-2000)}`);
        await assertConverged(stack);
        line += `; left ${pend} pending, ${lock} lock; up.sh ${rec.seconds.toFixed(0)} s; converged (${((Date.now() - started) / 1000).toFixed(0)} s)`;
        return { line, converged: true, interrupted };
    } catch (e) {
        line += `; NOT converged: ${String(e).split("\n").slice(0, 12).join("\n    ")}`;
        // leave the next run a clean start
        await upSh(stack);
        return { line, converged: false, interrupted };
    }
}
