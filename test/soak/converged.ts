/** The soak's verdict on a stack: converged, or an assertion saying what is not. */
import assert from "node:assert/strict";
import { pingAndCapture, TestStack } from "../integration/harness";
import { K1, K2, namesOf, VM_NAMES } from "./guide";
import { qemuPids } from "./processes";
import { pendingOperations } from "./state";

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
