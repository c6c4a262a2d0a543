/**
 * One bench run on a throwaway local stack: `up` from nothing, then the steps asked for, ending
 * with `destroy`. Every step is timed as users run it (scripts/pulumi, their environment, no
 * --skip-preview); per step, the SSH logins each VM's sshd accepted; per VM, its boot time (the
 * `vms` output) and its qemu's peak memory. Records go to `emit` as they are made.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { localNames } from "../../hosts/local";
import { routed } from "../integration/harness";
import { leftovers, qemuPeakMiB, quiet, SessionWatch } from "./observe";
import { BenchStack, CommandResult, tail } from "./stack";
import { changedResources, pulumiSummary } from "./stats";

/** The steps, as a user types them (the stack, --non-interactive and --config-file are added). */
export const STEPS = {
    /** From nothing: boots the VMs and builds every tunnel. */
    up: ["up", "--yes"],
    noChangeUp: ["up", "--yes"],
    /** What `npm run up` (scripts/up.sh) runs. */
    refreshNoChangeUp: ["up", "--yes", "--refresh"],
    preview: ["preview"],
    destroy: ["destroy", "--yes"],
} as const;
export type StepName = keyof typeof STEPS;

/** Which steps must leave the stack as it was. */
const NO_CHANGE: readonly StepName[] = ["noChangeUp", "refreshNoChangeUp", "preview"];

export interface StepRecord {
    readonly kind: "step";
    readonly run: number;
    readonly step: StepName;
    readonly argv: string[];
    readonly seconds: number;
    readonly code: number;
    /** Pulumi's "Resources:" lines, and its own "Duration:". */
    readonly resources?: string;
    readonly pulumiDuration?: string;
    /** A no-change step that changed something (the figure is then not a no-change figure). */
    readonly unexpectedChanges?: true;
    /** Host → SSH logins its sshd accepted during the step (the bench's own left out). */
    readonly sshSessions: Record<string, number>;
}

export interface VmRecord {
    readonly kind: "vm";
    readonly run: number;
    readonly vm: string;
    readonly pid: number;
    readonly bootSeconds: number;
    /** The qemu process's VmHWM just before destroy: its peak over the whole run. */
    readonly peakMiB?: number;
    readonly memoryMiB?: number;
    readonly accel?: string;
}

export interface RunOptions {
    readonly run: number;
    readonly stackName: string;
    /** `fou-tunnel:` config of the stack (keys without the namespace). */
    readonly config: Record<string, unknown>;
    /** Steps after `up` from nothing; must end with destroy. */
    readonly steps: readonly StepName[];
    readonly env: NodeJS.ProcessEnv;
    /** Fields added to every record (e.g. the scale bench's hosts and tunnels). */
    readonly tags?: Record<string, unknown>;
    readonly emit: (record: Record<string, unknown>) => void;
    /** True once the bench was asked to stop (checked between steps). */
    readonly stopping: () => boolean;
}

export const TEST_NET = "198.51.100.0/24";

/** The `vms` stack output: one report per VM. */
interface VmReport {
    readonly name: string;
    readonly address: string;
    readonly pid: number;
    readonly bootSeconds: number;
    readonly memoryMiB?: number;
    readonly accel?: string;
}

/** Runs one bench run; throws (after cleaning up) when a step fails or something is left over. */
export async function benchRun(o: RunOptions): Promise<{ steps: StepRecord[]; vms: VmRecord[] }> {
    if (o.steps[o.steps.length - 1] !== "destroy") throw new Error("a bench run must end with destroy");
    await waitForTestNet();
    const stack = new BenchStack(o.stackName, o.env);
    const names = localNames(`fou-tunnel/${o.stackName}`, 0);
    const keyDir = mkdtempSync(path.join(tmpdir(), "fou-bench-key-"));
    const watches: SessionWatch[] = [];
    const steps: StepRecord[] = [];
    const vms: VmRecord[] = [];
    const emit = (r: StepRecord | VmRecord) => o.emit({ ...(o.tags ?? {}), ...r });
    const recordStep = (r: CommandResult, name: StepName, sessions: Record<string, number>): void => {
        const rec = stepRecord(o.run, name, r, sessions);
        steps.push(rec);
        emit(rec);
        if (r.code !== 0) throw new Error(`scripts/pulumi ${r.argv.join(" ")} failed (${r.code}):\n${tail(r.stdout + r.stderr)}`);
    };

    const step = async (name: StepName): Promise<void> => {
        if (o.stopping()) throw new Error("stopped");
        const before = Object.fromEntries(watches.map((w) => [w.host, w.count()]));
        const r = await stack.run([...STEPS[name]]);
        await quiet(watches);
        recordStep(r, name, Object.fromEntries(watches.map((w) => [w.host, w.count() - (before[w.host] ?? 0)])));
    };

    try {
        await stack.init(o.config);
        const { up, reports } = await upFromNothing(stack, keyDir, watches);
        recordStep(up, "up", Object.fromEntries(watches.map((w) => [w.host, w.count()])));
        for (const name of o.steps) {
            if (name === "destroy") {
                // qemu's high-water mark is its peak over the run so far; the VMs go next.
                for (const vm of reports) {
                    const rec = vmRecord(o.run, vm);
                    vms.push(rec);
                    emit(rec);
                }
            }
            await step(name);
        }
        const left = leftovers({ bridge: names.bridge, tap: names.tap, runDir: names.runDir });
        if (left.length > 0) throw new Error(`destroy left on this machine: ${left.join(", ")}`);
        return { steps, vms };
    } finally {
        for (const w of watches) w.stop();
        rmSync(keyDir, { recursive: true, force: true });
        const problem = await stack.cleanup();
        if (problem) console.error(problem);
    }
}

/** Another stack's bridge on the test network: a teardown that is finishing gets a minute. */
async function waitForTestNet(): Promise<void> {
    for (let waited = 0; routed(TEST_NET); waited++) {
        if (waited === 0) console.error(`bench: ${TEST_NET} is routed on this machine (another stack's bridge); waiting up to 60 s`);
        if (waited >= 60) throw new Error(`${TEST_NET} is already routed on this machine (another stack's bridge?); the bench needs the test network free`);
        await new Promise((r) => setTimeout(r, 1000));
    }
}

/**
 * `up` from nothing, then a session watch on each VM it booted (adding them to WATCHES). Its
 * sessions are every login since the VMs booted, counted once the watches (which need the VMs
 * and the key) are there.
 */
async function upFromNothing(stack: BenchStack, keyDir: string, watches: SessionWatch[]): Promise<{ up: CommandResult; reports: VmReport[] }> {
    const up = await stack.run([...STEPS.up]);
    const out = up.code === 0 ? await stack.outputs() : {};
    const reports = (out.vms ?? []) as VmReport[];
    if (up.code === 0) {
        const keyFile = path.join(keyDir, "id");
        writeFileSync(keyFile, String(out.sshPrivateKey), { mode: 0o600 });
        for (const vm of reports) watches.push(new SessionWatch(vm.name, vm.address, keyFile));
        await Promise.all(watches.map((w) => w.started()));
        await quiet(watches);
    }
    return { up, reports };
}

/** A step's record: its command, time and exit status, Pulumi's summary, and SESSIONS per host. */
function stepRecord(run: number, name: StepName, r: CommandResult, sessions: Record<string, number>): StepRecord {
    const { resources, duration } = pulumiSummary(r.stdout);
    return {
        kind: "step",
        run,
        step: name,
        argv: r.argv,
        seconds: round(r.seconds, 2),
        code: r.code,
        ...(resources ? { resources } : {}),
        ...(duration ? { pulumiDuration: duration } : {}),
        ...(NO_CHANGE.includes(name) && changedResources(resources) ? { unexpectedChanges: true as const } : {}),
        sshSessions: sessions,
    };
}

/** A VM's record, taken just before destroy: its boot time and its qemu's peak memory. */
function vmRecord(run: number, vm: VmReport): VmRecord {
    const peak = qemuPeakMiB(vm.pid);
    return {
        kind: "vm",
        run,
        vm: vm.name,
        pid: vm.pid,
        bootSeconds: vm.bootSeconds,
        ...(peak !== undefined ? { peakMiB: round(peak, 1) } : {}),
        ...(vm.memoryMiB !== undefined ? { memoryMiB: vm.memoryMiB } : {}),
        ...(vm.accel !== undefined ? { accel: vm.accel } : {}),
    };
}

function round(x: number, digits: number): number {
    const f = 10 ** digits;
    return Math.round(x * f) / f;
}
