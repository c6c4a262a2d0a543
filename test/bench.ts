/**
 * `npm run bench`: the main job timed on the user's path. Each run, on a throwaway local stack
 * with the dev stack's config (Pulumi.dev.yaml; TOPOLOGY=path overrides its topology), runs
 * `scripts/pulumi` exactly as users do — their environment (less TS_NODE_*), the CLI's own
 * preview before every up/destroy — and times each command's wall clock:
 *
 *   up from nothing · no-change up · no-change up --refresh (what `npm run up` runs) ·
 *   preview (no change) · destroy
 *
 * plus, per VM, its boot seconds (the `vms` output) and its qemu's peak memory (VmHWM), and per
 * step and host, the SSH logins the VM's sshd accepted (its journal, the bench's own left out).
 * One JSON line per measurement (stdout and the results file), then a summary: median and range.
 *
 * Env: RUNS (default 3), TOPOLOGY, BENCH_RESULTS (results file; default a new file in the temp
 * directory, printed). Boots VMs on 198.51.100.0/24: run it under the shared lock,
 *   flock /tmp/fou-vm.lock npm run bench
 */
import { Bench, runMain, startBench } from "./bench/cli";
import { benchRun, StepName, StepRecord, VmRecord } from "./bench/run";
import { devConfig } from "./bench/stack";
import { fmtSpread, spread, table } from "./bench/stats";

const STEPS: StepName[] = ["up", "noChangeUp", "refreshNoChangeUp", "preview", "destroy"];
const LABEL: Record<StepName, string> = {
    up: "up from nothing",
    noChangeUp: "no-change up",
    refreshNoChangeUp: "no-change up --refresh",
    preview: "preview (no change)",
    destroy: "destroy",
};
/** Issue #10's goals for the guide's two hosts (seconds, wall). */
const GOALS: Partial<Record<StepName, number>> = { up: 18, noChangeUp: 3, refreshNoChangeUp: 3 };

async function main(): Promise<void> {
    const config = { ...devConfig(), ...(process.env.TOPOLOGY ? { topology: process.env.TOPOLOGY } : {}) };
    const guide = config.topology === undefined || config.topology === "topologies/guide.yaml";
    const bench = startBench("bench", { topology: config.topology ?? null, config });
    const steps: StepRecord[] = [];
    const vms: VmRecord[] = [];
    let failure: unknown;
    for (let run = 1; run <= bench.runs && !bench.stopping(); run++) {
        try {
            const r = await benchRun({
                run,
                stackName: "bench",
                config,
                steps: STEPS.slice(1),
                env: bench.env,
                emit: bench.emit,
                stopping: bench.stopping,
            });
            steps.push(...r.steps);
            vms.push(...r.vms);
        } catch (e) {
            failure = e;
            bench.emit({ kind: "error", run, message: e instanceof Error ? e.message : String(e) });
            break;
        }
    }
    summarize(bench, steps, vms, guide);
    if (failure) throw failure;
}

function summarize(bench: Bench, steps: StepRecord[], vms: VmRecord[], guide: boolean): void {
    const ok = steps.filter((s) => s.code === 0);
    if (ok.length === 0) return;
    const runs = new Set(ok.map((s) => s.run)).size;
    const rows: string[][] = [];
    for (const step of STEPS) {
        const recs = ok.filter((s) => s.step === step);
        const sp = spread(recs.map((s) => s.seconds));
        if (!sp) continue;
        const goal = guide ? GOALS[step] : undefined;
        const changed = recs.filter((s) => s.unexpectedChanges).length;
        bench.emit({ kind: "summary", metric: "seconds", step, ...sp, ...(goal !== undefined ? { goal, withinGoal: sp.median <= goal } : {}) });
        rows.push([
            `${LABEL[step]} (s)`,
            fmtSpread(sp),
            goal === undefined ? "" : `≤ ${goal} ${sp.median <= goal ? "ok" : "OVER"}`,
            changed ? `${changed} run(s) changed resources` : "",
        ]);
    }
    const names = [...new Set(vms.map((v) => v.vm))];
    for (const [metric, label, pick] of [
        ["bootSeconds", "boot", (v: VmRecord) => v.bootSeconds],
        ["peakMiB", "peak qemu memory", (v: VmRecord) => v.peakMiB],
    ] as const) {
        for (const vm of names) {
            const sp = spread(vms.filter((v) => v.vm === vm).map(pick).filter((x): x is number => x !== undefined));
            if (!sp) continue;
            bench.emit({ kind: "summary", metric, vm, ...sp });
            rows.push([`${label} ${vm} (${metric === "peakMiB" ? "MiB" : "s"})`, fmtSpread(sp, metric === "peakMiB" ? 0 : 1), "", ""]);
        }
    }
    const hosts = [...new Set(ok.flatMap((s) => Object.keys(s.sshSessions)))];
    const sessionRows = STEPS.filter((step) => ok.some((s) => s.step === step)).map((step) => [
        LABEL[step],
        ...hosts.map((h) => {
            const sp = spread(ok.filter((s) => s.step === step && h in s.sshSessions).map((s) => s.sshSessions[h]));
            if (sp) bench.emit({ kind: "summary", metric: "sshSessions", step, host: h, ...sp });
            return fmtSpread(sp, 0);
        }),
    ]);
    bench.report(`\nbench: ${runs} run(s), median (min–max); results in ${bench.resultsFile}\n`);
    bench.report(table(["measure", "median (range)", "goal", ""], rows));
    bench.report(`\nSSH sessions per host (logins its sshd accepted), median (range):\n`);
    bench.report(table(["step", ...hosts], sessionRows));
}

runMain(main);
