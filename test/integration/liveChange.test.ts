/**
 * Changes to a live stack under the genuine command plugin's rules: any input
 * change re-runs a command's create, only `triggers` replace, deletes run the stored script and
 * nothing reaches a remote command through the environment (the VMs' sshd keeps its default, no
 * AcceptEnv). A second tunnel of another protocol is added while a ping runs through the first
 * (HostPrep's module list grows: it must update in place, not unload what the first uses), then
 * removed; a connection-only change re-runs every create and keeps every instance id.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pingAndCapture, routed, ssh, hostState as stateOf, TestStack } from "./harness";

const K1 = "198.51.100.151";
const K2 = "198.51.100.152";
const stack = new TestStack("itest-live");
const timings: Record<string, number> = {};
let key = "";
let baseline: Record<string, string> = {};

after(async () => {
    await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    await stack.remove();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

/** A ping through ftok2 (5 a second) running on k1 until stopped; returns sent and received. */
function startPing(): () => { sent: number; received: number; text: string } {
    const pid = ssh(key, K1, "nohup ping -n -i 0.2 -I 10.10.10.1 10.10.10.2 >/tmp/live-ping 2>&1 </dev/null & echo $!").trim();
    assert.match(pid, /^\d+$/);
    return () => {
        const text = ssh(key, K1, `kill -INT ${pid}; sleep 1; tail -n 3 /tmp/live-ping`);
        const m = /(\d+) packets transmitted, (\d+) received/.exec(text);
        assert.ok(m, text);
        return { sent: Number(m[1]), received: Number(m[2]), text };
    };
}

interface Step {
    op: string;
    urn: string;
}
async function plan(): Promise<Step[]> {
    return JSON.parse((await stack.ok(["preview", "--json"])).stdout).steps as Step[];
}

/** URN → the instance id each remote command printed (the ids dependants are triggered by). */
async function instances(): Promise<Map<string, string>> {
    const state = JSON.parse((await stack.ok(["stack", "export", "--show-secrets"])).stdout);
    const out = new Map<string, string>();
    for (const r of state.deployment.resources ?? []) {
        const m = /^instance=(.*)$/m.exec(String(r.outputs?.stdout ?? ""));
        if (r.type === "command:remote:Command" && m) out.set(r.urn, m[1]);
    }
    return out;
}

test("the test network is free", () => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed on this machine (is another stack up?)");
});

test("the guide's tunnel on two VMs whose sshd accepts no PULUMI_* environment", async () => {
    await stack.init({ topology: "topologies/guide.yaml", tunnel: false });
    await stack.ok(["up", "--yes", "--skip-preview"]);
    key = (await stack.outputs()).sshPrivateKey;
    baseline = { [K1]: stateOf(key, K1), [K2]: stateOf(key, K2) };
    const accept = ssh(key, K1, "sshd -T 2>/dev/null | grep -i '^acceptenv' || true");
    assert.doesNotMatch(accept, /PULUMI/i, accept);
    await stack.setConfig({ tunnel: true });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upTunnel = r.seconds;
    for (const v of (await stack.outputs()).verification) {
        assert.ok(v.received >= 1, JSON.stringify(v));
    }
});

test("a second tunnel (sit over GUE) is added while a ping crosses the first: at most one ping lost", async () => {
    await stack.setConfig({ topology: "topologies/guide-sit.yaml" });
    const steps = await plan();
    const op = (suffix: string) => steps.filter((s) => s.urn.endsWith(`::${suffix}`)).map((s) => s.op);
    // More modules on each host: HostPrep updates in place; the first tunnel is not touched.
    assert.deepEqual(op("fou-k1-prep-kernel"), ["update"]);
    assert.ok(op("fou-k1-k2-k1-link").every((o) => o === "same"), JSON.stringify(op("fou-k1-k2-k1-link")));
    const notSame = steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.slice(s.urn.lastIndexOf("::") + 2)}`);
    assert.ok(!steps.some((s) => ["replace", "delete", "delete-replaced", "create-replacement"].includes(s.op)), notSame.join("\n"));
    const stop = startPing();
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upSecondTunnel = r.seconds;
    const ping = stop();
    assert.ok(ping.sent > 10, ping.text);
    assert.ok(ping.sent - ping.received <= 1, `lost ${ping.sent - ping.received} of ${ping.sent} pings during the up:\n${ping.text}`);
    const out = await stack.outputs();
    assert.deepEqual(Object.keys(out.gwips).sort(), ["k1-k2", "k1-k2-v6"]);
    assert.equal(out.verification.length, 4);
    for (const v of out.verification) {
        assert.ok(v.received >= 1 && v.udpToPeer >= 1 && v.udpFromPeer >= 1, JSON.stringify(v));
    }
    const v6 = out.gwips["k1-k2-v6"];
    const { ping: p6, cap } = pingAndCapture(key, K1, v6.k1, K2, v6.k2, 5556);
    assert.match(p6, /3 packets transmitted, 3 received/);
    assert.ok(cap.includes(`> ${K2}.5556: UDP`), cap);
    assert.match(pingAndCapture(key, K1, "10.10.10.1", K2, "10.10.10.2", 5555).ping, /3 received/);
});

test("the second tunnel removed: the first still works, untouched", async () => {
    await stack.setConfig({ topology: "topologies/guide.yaml" });
    const stop = startPing();
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upSecondRemoved = r.seconds;
    const ping = stop();
    assert.ok(ping.sent - ping.received <= 1, `lost ${ping.sent - ping.received} of ${ping.sent}:\n${ping.text}`);
    const state = stateOf(key, K1);
    assert.doesNotMatch(state, /ftsk2|5556/);
    assert.match(state, /^port 5555 ipproto 4$/m);
    const out = await stack.outputs();
    assert.equal(out.verification.length, 2);
    assert.match(pingAndCapture(key, K2, "10.10.10.2", K1, "10.10.10.1", 5555).ping, /3 received/);
});

test("a connection-only change re-runs every create and replaces nothing: same instance ids, tunnel up", async () => {
    const before = await instances();
    const checkedAt = (await stack.outputs()).verification.map((v: { measuredAt: string }) => v.measuredAt);
    await stack.setConfig({ sshDialTimeout: 12 });
    const steps = await plan();
    const changed = steps.filter((s) => s.op !== "same");
    assert.ok(changed.length > 0, "the connection change shows in the plan");
    const summary = changed.map((s) => `${s.op} ${s.urn.slice(s.urn.lastIndexOf("::") + 2)}`);
    assert.ok(changed.every((s) => s.op === "update"), summary.join("\n"));
    const stop = startPing();
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upConnectionChange = r.seconds;
    const ping = stop();
    assert.equal(ping.sent - ping.received, 0, ping.text);
    const afterIds = await instances();
    assert.ok(before.size >= 8, `instance ids seen: ${before.size}`);
    assert.deepEqual([...afterIds.entries()].sort(), [...before.entries()].sort());
    // The check ran again (create re-runs on any update) and still sees the tunnel work.
    const out = await stack.outputs();
    for (const [i, v] of out.verification.entries()) {
        assert.ok(v.received >= 1, JSON.stringify(v));
        assert.notEqual(v.measuredAt, checkedAt[i], "the check was measured again");
    }
    const noChange = await stack.pulumi(["preview", "--expect-no-changes"]);
    assert.equal(noChange.code, 0, noChange.stdout + noChange.stderr);
});

test("the tunnels removed: both VMs are exactly as before, modules and state files included", async () => {
    await stack.setConfig({ tunnel: false });
    await stack.ok(["up", "--yes", "--skip-preview"]);
    for (const h of [K1, K2]) {
        assert.equal(stateOf(key, h), baseline[h]);
    }
});
