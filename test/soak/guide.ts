/** The guide's stack as the soak and the day-two test run it: its config, addresses and names on this machine. */
import { localNames } from "../../hosts/local";
import { TestStack } from "../integration/harness";

/** The guide's topology on the local VMs, as the dev stack has it. */
export const GUIDE_CONFIG = { topology: "topologies/guide.yaml" };
export const K1 = "198.51.100.151";
export const K2 = "198.51.100.152";
export const VM_NAMES = ["k1", "k2"];

/** TestStack keeps the environment of its backend private; the soak's own processes (up.sh) need it. */
export function stackEnv(stack: TestStack): NodeJS.ProcessEnv {
    return stack["env"];
}

/** This machine's names of the stack's bridge, taps and run directory. */
export function namesOf(stack: TestStack) {
    const n = VM_NAMES.map((_, i) => localNames(`fou-tunnel/${stack.name}`, i));
    return { bridge: n[0].bridge, taps: n.map((x) => x.tap), runDir: n[0].runDir };
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}
