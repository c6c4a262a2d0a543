/** The stack's processes on this machine, found through /proc: its VMs' qemu, its pulumi run and what that started. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { TestStack } from "../integration/harness";
import { namesOf, sleep } from "./guide";

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
