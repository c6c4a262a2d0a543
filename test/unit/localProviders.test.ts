/**
 * The local providers (the bridge and the VMs) as the dynamic provider host runs them, against a
 * stub repository whose vm/vm.sh and vm/net.sh log their calls: create, read, diff, update and
 * delete, and the errors that name the VM.
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { NETWORK_PROVIDER_MODULE, NetworkProvider, VM_PROVIDER_MODULE, VmInputs, VmOutputs, VmProvider, vmStartArgs } from "../../hosts/localProvider";

// The providers as the dynamic provider host loads them from the state: their `__provider`
// texts, alone (the SDK's own loader), so every test below runs the stored code.
const requireFromString = require("require-from-string") as (code: string) => { handler: () => unknown };
const networkProvider = requireFromString(NETWORK_PROVIDER_MODULE).handler() as NetworkProvider;
const vmProvider = requireFromString(VM_PROVIDER_MODULE).handler() as VmProvider;

/** A repository whose vm/vm.sh and vm/net.sh log their arguments and stdin, and answer as $STUB_* say. */
const stubRepo = mkdtempSync(path.join(tmpdir(), "fou-stub-"));
const STUB = `#!/bin/sh
log=${stubRepo}/calls
echo "$(basename "$0") $*" >>"$log"
case "$1" in
start) cat >${stubRepo}/stdin; cat ${stubRepo}/start.out 2>/dev/null; exit $(cat ${stubRepo}/start.rc 2>/dev/null || echo 0) ;;
status) cat ${stubRepo}/status.out 2>/dev/null; echo "status says why" >&2; exit $(cat ${stubRepo}/status.rc 2>/dev/null || echo 0) ;;
*) exit 0 ;;
esac
`;
mkdirSync(path.join(stubRepo, "vm"));
for (const s of ["vm.sh", "net.sh"]) {
    writeFileSync(path.join(stubRepo, "vm", s), STUB);
    chmodSync(path.join(stubRepo, "vm", s), 0o755);
}
after(() => rmSync(stubRepo, { recursive: true, force: true }));
const stub = (file: string, text: string) => writeFileSync(path.join(stubRepo, file), text);
const calls = () => {
    const text = existsSync(path.join(stubRepo, "calls")) ? readFileSync(path.join(stubRepo, "calls"), "utf8") : "";
    rmSync(path.join(stubRepo, "calls"), { force: true });
    return text.trim().split("\n").filter((l) => l !== "");
};

const VM: VmInputs = {
    repo: stubRepo,
    name: "k2",
    address: "198.51.100.152/24",
    bridge: "foubr-abc",
    tap: "fou1-abc",
    mac: "52:54:00:ab:c0:02",
    stateDir: `${stubRepo}/run/k2`,
    memoryMb: 768,
    fou: true,
    authorizedKey: "ssh-ed25519 AAAAstack fou-tunnel",
    hostPublicKey: "ssh-ed25519 AAAAhost",
    hostPrivateKey: "PRIVATE\n",
    network: "foubr-abc-1",
};
const REPORT = { name: "k2", pid: 77, bootSeconds: 16, accel: "tcg", kernelRelease: "6.1", hostKey: "ssh-ed25519 AAAAhost" };

test("VM create: vm.sh start with the host key on stdin (not in the arguments), a fresh id each time, no private key in the outputs", async () => {
    stub("start.out", `booting\n${JSON.stringify(REPORT)}\n`);
    stub("start.rc", "0");
    const a = await vmProvider.create(VM);
    const b = await vmProvider.create(VM);
    assert.deepEqual(calls(), [`vm.sh ${vmStartArgs(VM).join(" ")}`, `vm.sh ${vmStartArgs(VM).join(" ")}`]);
    assert.ok(vmStartArgs(VM).includes("--host-key") && !vmStartArgs(VM).some((x) => x.includes("PRIVATE")));
    assert.equal(readFileSync(path.join(stubRepo, "stdin"), "utf8"), "PRIVATE\n");
    assert.match(a.id, /^k2-[0-9a-f]{12}$/);
    assert.notEqual(a.id, b.id, "a VM created again is a new identity");
    assert.deepEqual(a.outs.report, REPORT);
    assert.equal((a.outs as Record<string, unknown>).hostPrivateKey, undefined);
    assert.deepEqual(vmStartArgs({ ...VM, fou: false }).slice(-1), ["--no-fou"]);
});

test("VM create fails naming the VM, its address and port, with vm.sh's message; and on a host key other than the stack's", async () => {
    stub("start.rc", "1");
    await assert.rejects(vmProvider.create(VM), /^Error: VM k2 \(198\.51\.100\.152, SSH port 22\): vm\/vm\.sh start failed \(exit 1\)/);
    stub("start.rc", "0");
    stub("start.out", JSON.stringify({ ...REPORT, hostKey: "ssh-ed25519 AAAAother" }));
    await assert.rejects(vmProvider.create(VM), /VM k2 \(198\.51\.100\.152, SSH port 22\): booted with host key ssh-ed25519 AAAAother, not the stack's/);
    calls();
});

test("VM read: gone when vm.sh status says not running, or another qemu runs there; kept when the same one runs; an error otherwise", async () => {
    const props: VmOutputs = { ...(({ hostPrivateKey: _, ...o }) => o)(VM), report: REPORT };
    stub("status.rc", "0");
    stub("status.out", JSON.stringify(REPORT));
    assert.deepEqual(await vmProvider.read("k2-1", props), { id: "k2-1", props });
    stub("status.out", JSON.stringify({ ...REPORT, pid: 78 }));
    assert.deepEqual(await vmProvider.read("k2-1", props), { id: "" });
    stub("status.rc", "1");
    assert.deepEqual(await vmProvider.read("k2-1", props), { id: "" });
    stub("status.rc", "2");
    await assert.rejects(vmProvider.read("k2-1", props), /VM k2 \(198\.51\.100\.152, SSH port 22\): vm\/vm\.sh status failed \(exit 2\):\nstatus says why/);
    assert.deepEqual(calls(), Array(4).fill(`vm.sh status --state-dir ${VM.stateDir}`));
});

test("VM diff: any input but the repository path replaces (delete first); the private key counts through its public half; new provider code updates", async () => {
    const olds: VmOutputs = { ...(({ hostPrivateKey: _, ...o }) => o)(VM), report: REPORT };
    assert.deepEqual(await vmProvider.diff("x", olds, VM), { changes: false, replaces: [], deleteBeforeReplace: true });
    assert.deepEqual(await vmProvider.diff("x", olds, { ...VM, hostPrivateKey: "OTHER" }), { changes: false, replaces: [], deleteBeforeReplace: true });
    assert.deepEqual(await vmProvider.diff("x", olds, { ...VM, repo: "/elsewhere" }), { changes: true, replaces: [], deleteBeforeReplace: true });
    for (const [k, v] of Object.entries({ memoryMb: 1024, fou: false, hostPublicKey: "ssh-ed25519 AAAAnew", network: "foubr-abc-2", authorizedKey: "x", address: "198.51.100.160/24" })) {
        assert.deepEqual((await vmProvider.diff("x", olds, { ...VM, [k]: v })).replaces, [k]);
    }
    assert.deepEqual((await vmProvider.update("x", olds, { ...VM, repo: "/elsewhere" })).outs, { ...olds, repo: "/elsewhere" });
    // A new provider text (the SDK's `__provider`) is an update, so the next up stores it.
    const withCode = <T extends object>(o: T, code: string): T => ({ ...o, __provider: code });
    assert.deepEqual(await vmProvider.diff("x", withCode(olds, VM_PROVIDER_MODULE), withCode(VM, VM_PROVIDER_MODULE)), { changes: false, replaces: [], deleteBeforeReplace: true });
    assert.deepEqual(await vmProvider.diff("x", withCode(olds, "old code"), withCode(VM, VM_PROVIDER_MODULE)), { changes: true, replaces: [], deleteBeforeReplace: true });
    assert.deepEqual(await networkProvider.diff("x", withCode(NET, "old code"), withCode(NET, NETWORK_PROVIDER_MODULE)), { changes: true, replaces: [], deleteBeforeReplace: true });
    assert.deepEqual(await networkProvider.diff("x", NET, NET), { changes: false, replaces: [], deleteBeforeReplace: true });
});
const NET = { repo: "/r", bridge: "foubr-abc", address: "198.51.100.1/24", runDir: "/run/fou-tunnel/abc" };

test("VM delete: vm.sh stop of its state dir and tap; a failure names the VM", async () => {
    const props: VmOutputs = { ...(({ hostPrivateKey: _, ...o }) => o)(VM), report: REPORT };
    await vmProvider.delete("x", props);
    assert.deepEqual(calls(), [`vm.sh stop --state-dir ${VM.stateDir} --tap ${VM.tap}`]);
});

test("network: net.sh up; read gone when net.sh status fails; delete stops every VM left in the run dir, then the bridge and the dirs", async () => {
    const runDir = path.join(stubRepo, "fou-tunnel", "abc");
    const net = { repo: stubRepo, bridge: "foubr-abc", address: "198.51.100.1/24", runDir };
    const made = await networkProvider.create(net);
    assert.match(made.id, /^foubr-abc-[0-9a-f]{12}$/);
    assert.deepEqual(made.outs, net);
    stub("status.rc", "0");
    assert.deepEqual(await networkProvider.read(made.id, net), { id: made.id, props: net });
    stub("status.rc", "1");
    assert.deepEqual(await networkProvider.read(made.id, net), { id: "" });
    assert.deepEqual((await networkProvider.diff("x", net, { ...net, address: "198.51.100.2/24" })).replaces, ["address"]);
    assert.deepEqual(calls(), [
        "net.sh up --bridge foubr-abc --address 198.51.100.1/24",
        "net.sh status --bridge foubr-abc --address 198.51.100.1/24",
        "net.sh status --bridge foubr-abc --address 198.51.100.1/24",
    ]);
    // A VM whose create was interrupted (in no state) still has its dir: delete stops it.
    mkdirSync(path.join(runDir, "k1"), { recursive: true });
    mkdirSync(path.join(runDir, "k2"));
    await networkProvider.delete(made.id, net);
    assert.deepEqual(calls(), [`vm.sh stop --state-dir ${runDir}/k1`, `vm.sh stop --state-dir ${runDir}/k2`, "net.sh down --bridge foubr-abc"]);
    // (the stub leaves the dirs, so the run dir is not empty and stays; vm.sh stop removes them for real)
    rmSync(path.join(runDir), { recursive: true });
    await networkProvider.delete(made.id, net); // nothing left: fine
    assert.deepEqual(calls(), ["net.sh down --bridge foubr-abc"]);
    assert.ok(!existsSync(path.join(stubRepo, "fou-tunnel")), "the run dir's parent removed once empty");
});
