/**
 * `npm run bench:scale`: how `up` from nothing, a no-change `up` and `destroy` grow with the
 * number of hosts and tunnels. For each N in SCALE_N (default 2,3,4,6), a full mesh of N hosts
 * (topologies/mesh-nN.yaml, from scripts/mesh-topology.ts: N(N-1)/2 IPIP/FOU tunnels) on a
 * throwaway stack with the dev stack's config, timed as users run it (see test/bench.ts); RUNS
 * (default 3) rounds over all N. One JSON line per measurement, then a table per N (median and
 * range) and a least-squares line of each median against tunnels and hosts.
 *
 * Env: RUNS, SCALE_N, BENCH_RESULTS. Boots up to 6 VMs on 198.51.100.0/24, under the shared lock:
 *   flock /tmp/fou-vm.lock npm run bench:scale
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { meshPath, meshTopology, meshTunnels } from "../../scripts/mesh-topology";
import { Bench, runMain, startBench } from "./cli";
import { benchRun, StepName, StepRecord, VmRecord } from "./run";
import { devConfig, REPO } from "./stack";
import { fitLine, fmtSpread, Spread, spread, table } from "./stats";

const STEPS: StepName[] = ["up", "noChangeUp", "destroy"];
/** Issue #10's goals (seconds, wall) by number of hosts. */
const GOALS: Record<number, Partial<Record<StepName, number>>> = {
    2: { up: 18, noChangeUp: 3 },
    3: { up: 35, destroy: 8 },
    6: { up: 90, destroy: 15 },
};

type Tagged<T> = T & { hosts: number; tunnels: number };

async function main(): Promise<void> {
    const ns = (process.env.SCALE_N ?? "2,3,4,6").split(",").map((s) => Number(s.trim()));
    for (const n of ns) {
        const file = path.join(REPO, meshPath(n));
        let text: string | undefined;
        try {
            text = readFileSync(file, "utf8");
        } catch {
            // reported below
        }
        if (text !== meshTopology(n)) {
            throw new Error(`${meshPath(n)} is missing or not the generator's: node --require ts-node/register scripts/mesh-topology.ts ${n}`);
        }
    }
    const bench = startBench("bench-scale", { scaleN: ns, steps: STEPS });
    const steps: Tagged<StepRecord>[] = [];
    const vms: Tagged<VmRecord>[] = [];
    let failure: unknown;
    rounds: for (let run = 1; run <= bench.runs; run++) {
        for (const n of ns) {
            if (bench.stopping()) break rounds;
            const tags = { hosts: n, tunnels: meshTunnels(n) };
            try {
                const r = await benchRun({
                    run,
                    stackName: `scale-n${n}`,
                    config: { ...devConfig(), topology: meshPath(n) },
                    steps: STEPS.slice(1),
                    env: bench.env,
                    tags,
                    emit: bench.emit,
                    stopping: bench.stopping,
                });
                steps.push(...r.steps.map((s) => ({ ...s, ...tags })));
                vms.push(...r.vms.map((v) => ({ ...v, ...tags })));
            } catch (e) {
                failure = e;
                bench.emit({ kind: "error", run, ...tags, message: e instanceof Error ? e.message : String(e) });
                break rounds;
            }
        }
    }
    summarize(bench, ns, steps, vms);
    if (failure) throw failure;
}

function summarize(bench: Bench, ns: number[], steps: Tagged<StepRecord>[], vms: Tagged<VmRecord>[]): void {
    const ok = steps.filter((s) => s.code === 0);
    if (ok.length === 0) return;
    const medians: Record<StepName, [number, number, number][]> = { up: [], noChangeUp: [], refreshNoChangeUp: [], preview: [], destroy: [] };
    const rows: string[][] = [];
    for (const n of ns) {
        const at = ok.filter((s) => s.hosts === n);
        if (at.length === 0) continue;
        const tunnels = meshTunnels(n);
        const goals: string[] = [];
        const cells = STEPS.map((step) => {
            const sp = spread(at.filter((s) => s.step === step).map((s) => s.seconds));
            if (!sp) return "–";
            medians[step].push([n, tunnels, sp.median]);
            const goal = GOALS[n]?.[step];
            if (goal !== undefined) goals.push(`${step} ≤ ${goal} ${sp.median <= goal ? "ok" : "OVER"}`);
            bench.emit({ kind: "summary", metric: "seconds", hosts: n, tunnels, step, ...sp, ...(goal !== undefined ? { goal, withinGoal: sp.median <= goal } : {}) });
            return fmtSpread(sp);
        });
        const sessions = STEPS.map((step) => {
            const sp = spread(at.filter((s) => s.step === step).flatMap((s) => Object.values(s.sshSessions)));
            if (sp) bench.emit({ kind: "summary", metric: "sshSessionsPerHost", hosts: n, tunnels, step, ...sp });
            return fmtSpread(sp, 0);
        });
        const perVm = (pick: (v: VmRecord) => number | undefined, metric: string): Spread | undefined => {
            const sp = spread(vms.filter((v) => v.hosts === n).map(pick).filter((x): x is number => x !== undefined));
            if (sp) bench.emit({ kind: "summary", metric, hosts: n, tunnels, ...sp });
            return sp;
        };
        const boot = perVm((v) => v.bootSeconds, "bootSeconds");
        const peak = perVm((v) => v.peakMiB, "peakMiB");
        const changed = at.filter((s) => s.unexpectedChanges).length;
        rows.push([String(n), String(tunnels), ...cells, fmtSpread(boot), fmtSpread(peak, 0), sessions.join(" / "), [...goals, ...(changed ? [`${changed} no-change run(s) changed`] : [])].join(", ")]);
    }
    const runs = new Set(ok.map((s) => s.run)).size;
    bench.report(`\nbench:scale: full meshes, ${runs} round(s), median (min–max) seconds; results in ${bench.resultsFile}\n`);
    bench.report(
        table(["hosts", "tunnels", "up", "no-change up", "destroy", "boot/VM", "peak MiB/VM", "SSH/host up / no-change / destroy", "goals"], rows),
    );
    const growth: string[][] = [];
    for (const step of STEPS) {
        const pts = medians[step];
        if (pts.length < 2) continue;
        const byTunnel = fitLine(pts.map(([, t, y]) => [t, y]))!;
        const byHost = fitLine(pts.map(([h, , y]) => [h, y]))!;
        bench.emit({ kind: "growth", step, perTunnel: byTunnel, perHost: byHost });
        growth.push([step, `${byTunnel.a.toFixed(1)} + ${byTunnel.b.toFixed(2)} × tunnels`, `${byHost.a.toFixed(1)} + ${byHost.b.toFixed(2)} × hosts`]);
    }
    if (growth.length > 0) {
        bench.report(`\ngrowth (least squares over the medians, seconds):\n`);
        bench.report(table(["step", "by tunnels", "by hosts"], growth));
    }
}

runMain(main);
