/** What a crash leaves: a simulated reboot of this machine, and the stack's leftovers, locks and pending operations. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { routed, TestStack } from "../integration/harness";
import { namesOf } from "./guide";
import { killVm, qemuPids } from "./processes";

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
