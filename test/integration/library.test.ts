/**
 * The components from another program, for real: two VMs booted with vm/vm.sh (machines no stack
 * owns, as a user's existing hosts), examples/existing-hosts installed from the packed library,
 * its `up` builds the guide's tunnel between them by SSH address and pinned host key, packets
 * cross it as UDP to port 5555, a second preview plans nothing, and `destroy` leaves both hosts
 * exactly as they were.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { ExampleStack, installExample } from "./example";
import { hostState, pingAndCapture, REPO, routed } from "./harness";

const BRIDGE = "flib-br";
const VMS = [
    { name: "k1", address: "198.51.100.151", tap: "flib-k1", mac: "52:54:00:00:07:51" },
    { name: "k2", address: "198.51.100.152", tap: "flib-k2", mac: "52:54:00:00:07:52" },
];
const work = mkdtempSync(path.join(tmpdir(), "fou-library-"));
const vmDir = (name: string) => path.join(work, "vm", name);
let key = "";
let hostKeys: Record<string, string> = {};
let exampleDir = "";
let stack: ExampleStack | undefined;
const timings: Record<string, number> = {};

after(async () => {
    // Whatever happened above, leave nothing behind: the stack, the VMs, the bridge.
    if (stack) {
        await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
        await stack.remove();
    }
    for (const vm of VMS) {
        execFileSync(path.join(REPO, "vm", "vm.sh"), ["stop", "--state-dir", vmDir(vm.name), "--tap", vm.tap], { stdio: "inherit" });
    }
    execFileSync(path.join(REPO, "vm", "net.sh"), ["down", "--bridge", BRIDGE], { stdio: "inherit" });
    if (exampleDir) rmSync(exampleDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

/** `vm.sh start` for one VM; resolves with its JSON report. */
function start(vm: (typeof VMS)[number], authorizedKey: string): Promise<{ hostKey: string; bootSeconds: number }> {
    return new Promise((resolve, reject) => {
        const args = ["start", "--name", vm.name, "--address", `${vm.address}/24`, "--bridge", BRIDGE, "--tap", vm.tap, "--mac", vm.mac];
        args.push("--state-dir", vmDir(vm.name), "--authorized-key", authorizedKey, "--no-persist");
        const p = spawn(path.join(REPO, "vm", "vm.sh"), args, { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        p.stdout.on("data", (d) => (out += d));
        p.on("error", reject);
        p.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!)) : reject(new Error(`vm.sh start ${vm.name}: exit ${code}`))));
    });
}

test("the test network is free", () => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed on this machine (a dev stack or another test's VMs?); the test would disturb it");
});

test("two VMs nobody's stack owns, reachable over SSH with a pinned host key", async () => {
    execFileSync(path.join(REPO, "vm", "net.sh"), ["up", "--bridge", BRIDGE, "--address", "198.51.100.1/24"], { stdio: "inherit" });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "fou-library-test", "-f", path.join(work, "id")]);
    key = readFileSync(path.join(work, "id"), "utf8");
    const authorized = readFileSync(path.join(work, "id.pub"), "utf8").trim();
    const t0 = Date.now();
    const reports = await Promise.all(VMS.map((vm) => start(vm, authorized)));
    timings.bootVms = (Date.now() - t0) / 1000;
    hostKeys = Object.fromEntries(VMS.map((vm, i) => [vm.name, reports[i].hostKey]));
    for (const vm of VMS) {
        assert.match(hostKeys[vm.name], /^ssh-ed25519 AAAA/);
    }
});

let baseline: Record<string, string> = {};

test("the example installs from the packed library and its `up` builds the tunnel between the two addresses", async () => {
    baseline = Object.fromEntries(VMS.map((vm) => [vm.name, hostState(key, vm.address)]));
    const t0 = Date.now();
    exampleDir = installExample();
    timings.install = (Date.now() - t0) / 1000;
    stack = new ExampleStack(exampleDir, "lib");
    await stack.init({ hosts: VMS.map((vm) => ({ name: vm.name, address: vm.address, hostKey: hostKeys[vm.name] })) }, key);
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.up = r.seconds;
    const out = await stack.outputs();
    assert.deepEqual(out.tunnelGwips, { k1: "10.10.10.1", k2: "10.10.10.2" });
    assert.deepEqual(out.interfaces, { k1: "ftok2", k2: "ftok1" });
    assert.deepEqual(out.mtu, { k1: 1472, k2: 1472 });
    assert.match(out.kernels.k1, /^kernel=6\.\d+/m);
    assert.equal(out.verification.length, 2);
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 3 && v.udpFromPeer >= 3, JSON.stringify(v));
    }
    // Independently of the stack's own check: pings both ways, UDP to 5555 on the receiving end.
    const there = pingAndCapture(key, VMS[0].address, "10.10.10.1", VMS[1].address, "10.10.10.2", 5555);
    assert.match(there.ping, /3 packets transmitted, 3 received/);
    assert.ok(there.cap.includes(`> ${VMS[1].address}.5555: UDP`), there.cap);
    const back = pingAndCapture(key, VMS[1].address, "10.10.10.2", VMS[0].address, "10.10.10.1", 5555);
    assert.match(back.ping, /3 packets transmitted, 3 received/);
    assert.ok(back.cap.includes(`> ${VMS[0].address}.5555: UDP`), back.cap);
    // Forwarding left as it was (the example asks for none).
    assert.equal(hostState(key, VMS[0].address).match(/^forward:\n(\d)/m)?.[1], baseline.k1.match(/^forward:\n(\d)/m)?.[1]);
});

test("a second preview plans nothing", async () => {
    const r = await stack!.ok(["preview", "--json"]);
    const steps = JSON.parse(r.stdout).steps as { op: string; urn: string }[];
    const changed = steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn}`);
    assert.deepEqual(changed, []);
});

test("destroy undoes every step: both hosts exactly as before", async () => {
    const r = await stack!.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = r.seconds;
    for (const vm of VMS) {
        assert.equal(hostState(key, vm.address), baseline[vm.name], `${vm.name} after destroy`);
    }
});
