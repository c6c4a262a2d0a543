/**
 * `npm run bench:kernel`: the kernel upgrade (issue #18) timed on the user's path. Each round
 * boots the lab of test/integration/kernelUpgrade.test.ts afresh (k1 on Debian's 6.1 without fou,
 * from its own disk through GRUB; k2 with fou; the signed 6.12 repository on the test bridge),
 * then runs `scripts/pulumi up` of an ssh stack whose topology asks k1's upgrade, and splits k1's
 * part of it:
 *
 *   install  the install step's create (apt-get update, the kernel package, update-grub), as
 *            Pulumi's progress reports it
 *   reboot   from that step's end to the new kernel's first line on k1's serial console
 *            (shutdown, firmware, GRUB)
 *   wait     from there to the verify step's end (the kernel's and systemd's boot, sshd, the
 *            command plugin's dial retries, the checks)
 *
 * plus the whole up, the rest of it (the tunnel), a no-change up (no reboot) and the destroy.
 * One JSON line per measurement, then a summary: median and range.
 *
 * Env: RUNS (default 3), BENCH_RESULTS. Boots VMs on 198.51.100.0/24: run it under the lock,
 *   flock /tmp/fou-vm.lock npm run bench:kernel
 */
import { KernelLab } from "../integration/kernelLab";
import { runMain, startBench } from "./cli";
import { BenchStack, tail } from "./stack";
import { fmtSpread, spread, table } from "./stats";

const MEASURES = ["bootK1", "up", "install", "reboot", "wait", "tunnel", "noChangeUp", "destroy"] as const;
type Measure = (typeof MEASURES)[number];
const LABEL: Record<Measure, string> = {
    bootK1: "k1 boot from its disk (6.1)",
    up: "up (upgrade, reboot, tunnel)",
    install: "  install step",
    reboot: "  reboot (to the new kernel's start)",
    wait: "  wait (to the verify step's end)",
    tunnel: "  the rest: the tunnel",
    noChangeUp: "no-change up",
    destroy: "destroy",
};

/** Wall-clock marks of one up: when Pulumi printed each step's "created", when k1's console showed each boot. */
class Marks {
    readonly at: Record<string, number> = {};
    private buffer = "";

    constructor(private readonly started: number) {}

    /** Pulumi's progress as it comes: the first time each LINE pattern shows. */
    stdout(chunk: string, patterns: Record<string, RegExp>): void {
        this.buffer += chunk;
        const lines = this.buffer.split("\n");
        this.buffer = lines.pop()!;
        for (const l of lines) {
            for (const [k, re] of Object.entries(patterns)) {
                if (this.at[k] === undefined && re.test(l)) this.at[k] = (Date.now() - this.started) / 1000;
            }
        }
    }

    mark(k: string): void {
        if (this.at[k] === undefined) this.at[k] = (Date.now() - this.started) / 1000;
    }
}

async function round(lab: KernelLab, run: number, env: NodeJS.ProcessEnv): Promise<Partial<Record<Measure, number>> & { kernel?: string }> {
    const boot = await lab.startVms(run);
    const stack = new BenchStack(`kbench${run}`, env);
    try {
        await stack.init({ hosts: "ssh", topology: lab.topologyFile(`round${run}`, lab.kernelBlock()) });
        stack.setSecret("sshPrivateKey", lab.key);
        const started = Date.now();
        const marks = new Marks(started);
        const watch = setInterval(() => {
            if (lab.consoleBoots().length >= 2) marks.mark("newKernel");
        }, 200);
        const up = await stack.run(["up", "--yes"], 40 * 60_000, (chunk) =>
            marks.stdout(chunk, { installed: /k1-kernel-upgrade-install\s+created/, verified: /k1-kernel-upgrade-verify\s+created/ }),
        );
        clearInterval(watch);
        if (up.code !== 0) throw new Error(`up failed (${up.code}):\n${tail(up.stdout + up.stderr)}`);
        const installSeconds = /k1-kernel-upgrade-install\s+created \((\d+(?:\.\d+)?)s\)/.exec(up.stdout);
        const { installed, verified, newKernel } = marks.at;
        if (installed === undefined || verified === undefined || newKernel === undefined || !installSeconds) {
            throw new Error(`up passed, but its marks are missing (${JSON.stringify(marks.at)}): was k1 upgraded?\n${tail(up.stdout)}`);
        }
        const noChange = await stack.run(["up", "--yes", "--expect-no-changes"]);
        if (noChange.code !== 0) throw new Error(`no-change up failed (${noChange.code}):\n${tail(noChange.stdout + noChange.stderr)}`);
        const kernel = lab.asAdmin("uname -r").trim();
        const destroy = await stack.run(["destroy", "--yes"]);
        if (destroy.code !== 0) throw new Error(`destroy failed (${destroy.code}):\n${tail(destroy.stdout + destroy.stderr)}`);
        return {
            kernel,
            bootK1: boot.bootK1,
            up: up.seconds,
            install: Number(installSeconds[1]),
            reboot: newKernel - installed,
            wait: verified - newKernel,
            tunnel: up.seconds - verified,
            noChangeUp: noChange.seconds,
            destroy: destroy.seconds,
        };
    } finally {
        const left = await stack.cleanup();
        if (left) console.error(left);
        await lab.stopVms();
    }
}

async function main(): Promise<void> {
    const bench = startBench("bench-kernel", {});
    const lab = new KernelLab();
    const rows: Partial<Record<Measure, number>>[] = [];
    let failure: unknown;
    try {
        const { imageAndRepo } = await lab.open();
        bench.emit({ kind: "setup", imageAndRepo });
        for (let run = 1; run <= bench.runs && !bench.stopping(); run++) {
            const r = await round(lab, run, bench.env);
            bench.emit({ kind: "round", run, ...r });
            rows.push(r);
        }
    } catch (e) {
        failure = e;
        bench.emit({ kind: "error", message: e instanceof Error ? e.message : String(e) });
    } finally {
        await lab.close();
    }
    if (rows.length > 0) {
        const lines = MEASURES.map((m) => {
            const sp = spread(rows.map((r) => r[m]).filter((x): x is number => x !== undefined));
            if (sp) bench.emit({ kind: "summary", metric: m, ...sp });
            return [`${LABEL[m]} (s)`, fmtSpread(sp)];
        });
        bench.report(`\nbench:kernel: ${rows.length} round(s), median (min–max); results in ${bench.resultsFile}\n`);
        bench.report(table(["measure", "median (range)"], lines));
    }
    if (failure) throw failure;
}

runMain(main);
