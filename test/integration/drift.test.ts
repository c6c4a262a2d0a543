/**
 * Drift, for real: objects removed or changed on the VMs by hand show in `pulumi preview
 * --refresh` as their probes' replacements, naming host and object; `pulumi up --refresh`
 * rebuilds exactly those objects (and what sits on them), and the check measures the tunnel
 * again. Without drift, `pulumi up --refresh --expect-no-changes` passes.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { explain, pingAndCapture, routed, ssh, TestStack } from "./harness";

const K1 = "198.51.100.151";
const K2 = "198.51.100.152";
const stack = new TestStack("itest-drift");
const timings: Record<string, number> = {};
let key = "";

// The guide's tunnel with persist, so boot units can drift too.
const topology = path.join(stack.dir, "guide-persist.yaml");
writeFileSync(
    topology,
    [
        "hosts: [{name: k1, address: 198.51.100.151}, {name: k2, address: 198.51.100.152}]",
        "tunnels:",
        // A routed prefix, so the hosts forward (and ip_forward can drift).
        "  - {hosts: [k1, k2], name: k1-k2, port: 5555, gwips: [10.10.10.1, 10.10.10.2], interfaces: [ftok2, ftok1], persist: true, routes: {k1: [10.20.2.0/24]}}",
        "",
    ].join("\n"),
);

after(async () => {
    await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    await stack.remove();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

/** What the checks' probes report while the tunnel passes nothing. */
const BROKEN = {
    "fou-k1-k2-k1-check-probe": "k1: tunnel 10.10.10.1 → 10.10.10.2: no ping reply from 10.10.10.2 through the tunnel",
    "fou-k1-k2-k2-check-probe": "k2: tunnel 10.10.10.2 → 10.10.10.1: no ping reply from 10.10.10.1 through the tunnel",
};

interface Step {
    op: string;
    urn: string;
    oldState?: { outputs?: { observed?: string } };
}

/**
 * `preview --refresh`: what each replaced probe found (by resource name), and the planned
 * operation of every other resource that changes (`update`: rebuilt in place by its create;
 * `replace`: rebuilt because what it sits on was).
 */
async function driftInPlan(): Promise<{ found: Record<string, string>; ops: Record<string, string> }> {
    const r = await stack.ok(["preview", "--refresh", "--json"]);
    const steps = JSON.parse(r.stdout).steps as Step[];
    const name = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
    const found: Record<string, string> = {};
    const ops: Record<string, string> = {};
    for (const s of steps) {
        if (s.op === "same" || s.op === "refresh" || s.urn.includes("pulumi:pulumi:Stack")) continue;
        if (s.urn.includes("DriftProbe")) {
            assert.equal(s.op, "replace", s.urn);
            found[name(s.urn)] = String(s.oldState?.outputs?.observed);
        } else {
            ops[name(s.urn)] = s.op;
        }
    }
    return { found, ops };
}

async function repairAndVerify(label: string): Promise<void> {
    const before = (await stack.outputs()).verification.map((v: { measuredAt: string }) => v.measuredAt);
    const r = await stack.ok(["up", "--refresh", "--yes", "--skip-preview"]);
    timings[label] = r.seconds;
    const out = await stack.outputs();
    for (const [i, v] of out.verification.entries()) {
        assert.ok(v.received >= 1 && v.udpToPeer >= 1 && v.udpFromPeer >= 1, JSON.stringify(v));
        assert.ok(v.measuredAt > before[i], `verification measured again (${before[i]} → ${v.measuredAt})`);
    }
    for (const [from, fg, to, tg] of [
        [K1, "10.10.10.1", K2, "10.10.10.2"],
        [K2, "10.10.10.2", K1, "10.10.10.1"],
    ]) {
        assert.match(pingAndCapture(key, from, fg, to, tg, 5555).ping, /3 packets transmitted, 3 received/);
    }
    const again = await stack.pulumi(["up", "--refresh", "--yes", "--skip-preview", "--expect-no-changes"]);
    assert.equal(again.code, 0, `after the repair, a refresh finds nothing more:\n${explain(again)}`);
}

test("the test network is free", () => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed on this machine (is another stack up?)");
});

test("up, then up --refresh --expect-no-changes: a refresh of a correct stack finds nothing", async () => {
    await stack.init({ topology });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.up = r.seconds;
    key = (await stack.outputs()).sshPrivateKey;
    const again = await stack.pulumi(["up", "--refresh", "--yes", "--skip-preview", "--expect-no-changes"]);
    timings.upRefreshNoChange = again.seconds;
    assert.equal(again.code, 0, explain(again));
});

test("k1: route deleted, ip_forward off, boot unit disabled — each named, each rebuilt in place", async () => {
    // Boot units are the stack's own: fou-tunnel-<stack>-<interface>.service.
    ssh(key, K1, "ip route del 10.10.10.2/32 dev ftok2; sysctl -q -w net.ipv4.ip_forward=0; systemctl disable --quiet fou-tunnel-itest-drift-ftok2.service");
    const { found, ops } = await driftInPlan();
    assert.deepEqual(found, {
        "fou-k1-k2-k1-route-probe": "k1: route to 10.10.10.2/32 on ftok2: route to 10.10.10.2/32 via 10.10.10.1 dev ftok2 is missing",
        "fou-k1-prep-ip-forward-probe": "k1: net.ipv4.ip_forward: net.ipv4.ip_forward is not 1",
        "fou-k1-k2-k1-boot-probe": "k1: boot unit fou-tunnel-itest-drift-ftok2.service: unit fou-tunnel-itest-drift-ftok2.service is not enabled",
        // Without its route the tunnel passes nothing, and the checks' probes say so too.
        ...BROKEN,
    });
    // Each drifted object's create runs again (an update); the checks, triggered by the route's
    // new instance, run again; nothing else is touched.
    assert.deepEqual(ops, {
        "fou-k1-k2-k1-route": "update",
        "fou-k1-prep-ip-forward": "update",
        "fou-k1-k2-k1-boot": "update",
        "fou-k1-k2-k1-check": "replace",
        "fou-k1-k2-k2-check": "replace",
    });
    await repairAndVerify("repairK1");
    assert.match(ssh(key, K1, "cat /proc/sys/net/ipv4/ip_forward; systemctl is-enabled fou-tunnel-itest-drift-ftok2.service"), /^1\nenabled$/m);
});

test("k2: FOU port and address deleted — each named; the port's link is left alone", async () => {
    ssh(key, K2, "ip fou del port 5555; ip addr del 10.10.10.2/32 dev ftok1");
    const { found, ops } = await driftInPlan();
    assert.deepEqual(found, {
        "fou-k2-fou-5555-fou-probe": "k2: FOU port 5555: FOU port 5555 (ipproto 4) is missing",
        "fou-k1-k2-k2-addr-probe": "k2: address 10.10.10.2 on ftok1: address 10.10.10.2/32 is not on ftok1",
        // The kernel drops a route with the address it goes via.
        "fou-k1-k2-k2-route-probe": "k2: route to 10.10.10.1/32 on ftok1: route to 10.10.10.1/32 via 10.10.10.2 dev ftok1 is missing",
        ...BROKEN,
    });
    assert.equal(ops["fou-k2-fou-5555-fou"], "update");
    assert.equal(ops["fou-k1-k2-k2-addr"], "update");
    assert.equal(ops["fou-k1-k2-k2-route"], "replace", "the route sits on the address");
    assert.equal(ops["fou-k1-k2-k2-link"], undefined, "the link is not touched");
    await repairAndVerify("repairK2");
    assert.match(ssh(key, K2, "ip fou show; ip -o addr show dev ftok1"), /port 5555 ipproto 4[\s\S]*inet 10\.10\.10\.2\/32/);
});

test("a link deleted on k1 and one set down on k2: both rebuilt, with what sits on them", async () => {
    ssh(key, K1, "ip link del ftok2");
    ssh(key, K2, "ip link set dev ftok1 down");
    const { found, ops } = await driftInPlan();
    assert.equal(found["fou-k1-k2-k1-link-probe"], "k1: link ftok2: link ftok2 is missing");
    assert.equal(found["fou-k1-k2-k2-link-probe"], "k2: link ftok1: link ftok1 is down");
    for (const h of ["k1", "k2"]) {
        assert.equal(ops[`fou-k1-k2-${h}-link`], "update");
        assert.equal(ops[`fou-k1-k2-${h}-addr`], "replace");
        assert.equal(ops[`fou-k1-k2-${h}-route`], "replace");
    }
    await repairAndVerify("repairLinks");
});
