import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { recorded, settle, valueOf } from "./mocks";
import { DEFAULT_LOCAL } from "../../config";
import { HostPrep } from "../../components/hostPrep";
import { keygenScript, LocalVms, localNames, publicKeyOnly, splitKeyPair } from "../../hosts/local";
import { SSH_DIALS } from "../../lib/sshLogin";
import { NETWORK_PROVIDER_MODULE, NetworkProvider, VM_PROVIDER_MODULE, VmInputs, VmOutputs, VmProvider, vmStartArgs } from "../../hosts/localProvider";

// The providers as the dynamic provider host loads them from the state: their `__provider`
// texts, alone (the SDK's own loader), so every test below runs the stored code.
const requireFromString = require("require-from-string") as (code: string) => { handler: () => unknown };
const networkProvider = requireFromString(NETWORK_PROVIDER_MODULE).handler() as NetworkProvider;
const vmProvider = requireFromString(VM_PROVIDER_MODULE).handler() as VmProvider;

// mocks.ts knows commands; the VMs are dynamic resources, whose report this file's mocks make up.
// They record into the same `recorded` list; a transformation records each resource's options.
const options = new Map<string, pulumi.CustomResourceOptions>();
const STACK_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nstack\n-----END OPENSSH PRIVATE KEY-----\nssh-ed25519 AAAAstack fou-tunnel\n";
const hostKeyText = (name: string) =>
    `-----BEGIN OPENSSH PRIVATE KEY-----\n${name}\n-----END OPENSSH PRIVATE KEY-----\nssh-ed25519 AAAA${name.replace(/[^A-Za-z0-9]/g, "")} root@x\n`;

const mocks: pulumi.runtime.Mocks = {
    newResource(args) {
        recorded.push({ type: args.type, name: args.name, inputs: args.inputs, dependsOn: [] });
        const state: Record<string, any> = { ...args.inputs };
        if (args.type === "command:local:Command") {
            state.stdout = args.name.endsWith("-host-key") ? hostKeyText(args.name) : STACK_KEY;
            state.stderr = "";
        } else if (args.type === "command:remote:Command") {
            state.stdout = "loaded=fou ipip\nprevious=0";
            state.stderr = "";
        } else if (args.type === "pulumi-nodejs:dynamic/fou:LocalVm") {
            state.report = { name: args.inputs.name, pid: 4242, bootSeconds: 17.5, accel: "tcg", kernelRelease: "6.1.0-56-amd64", hostKey: args.inputs.hostPublicKey };
            delete state.hostPrivateKey;
        }
        return { id: `${args.name}-id`, state };
    },
    call: (args) => args.inputs,
};

let vms: LocalVms;
let prep: HostPrep;
before(async () => {
    await settle(); // mocks.ts's own root registers first
    pulumi.runtime.setMocks(mocks, "fou-tunnel", "unit", false);
    const root = new pulumi.ComponentResource("test:index:LocalRoot", "local-root", {}, {
        transformations: [
            (t) => {
                options.set(t.name, t.opts as pulumi.CustomResourceOptions);
                return undefined;
            },
        ],
    });
    vms = new LocalVms(
        "lv",
        { settings: { ...DEFAULT_LOCAL, vms: [DEFAULT_LOCAL.vms[0], { ...DEFAULT_LOCAL.vms[1], fou: false }] }, stackId: "fou-tunnel/unit" },
        { parent: root },
    );
    // A tunnel step on the first VM, as the components declare them.
    prep = new HostPrep("k1-prep", { host: vms.hosts[0] }, { parent: root });
    await valueOf(vms.vms);
    await valueOf(prep.ready);
    await settle();
});

function res(name: string) {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no resource ${name}; have ${recorded.map((x) => x.name).join(", ")}`);
    return r;
}

/** The inputs with Pulumi's secret wrapper removed. */
function plain(v: any): any {
    if (v && typeof v === "object" && "4dabf18193072939515e22adb298388d" in v) {
        return plain(v.value);
    }
    if (Array.isArray(v)) {
        return v.map(plain);
    }
    if (v && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
    }
    return v;
}
const isSecretInput = (v: unknown) => typeof v === "object" && v !== null && "4dabf18193072939515e22adb298388d" in v;

test("names on this machine fit IFNAMSIZ and differ between stacks", () => {
    const a = localNames("fou-tunnel/dev", 0);
    const b = localNames("fou-tunnel/itest", 0);
    for (const n of [a.bridge, a.tap, localNames("fou-tunnel/dev", 1).tap]) {
        assert.ok(n.length <= 15, n);
    }
    assert.notEqual(a.bridge, b.bridge);
    assert.notEqual(a.tap, localNames("fou-tunnel/dev", 1).tap);
    assert.match(a.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
});

test("the bridge and each VM are dynamic resources (their refresh looks at this machine) with the stored repository path", () => {
    const n = localNames("fou-tunnel/unit", 0);
    const repo = path.resolve(__dirname, "..", "..");
    const net = res("lv-network");
    assert.equal(net.type, "pulumi-nodejs:dynamic/fou:LocalNetwork");
    assert.deepEqual(
        { repo: net.inputs.repo, bridge: net.inputs.bridge, address: net.inputs.address, runDir: net.inputs.runDir },
        { repo, bridge: n.bridge, address: "198.51.100.1/24", runDir: n.runDir },
    );
    const k1 = res("lv-k1");
    assert.equal(k1.type, "pulumi-nodejs:dynamic/fou:LocalVm");
    assert.deepEqual(
        [k1.inputs.repo, k1.inputs.name, k1.inputs.address, k1.inputs.bridge, k1.inputs.tap, k1.inputs.mac, k1.inputs.stateDir, k1.inputs.memoryMb, k1.inputs.fou],
        [repo, "k1", "198.51.100.151/24", n.bridge, n.tap, n.mac, `${n.runDir}/k1`, 384, true],
    );
    assert.equal(k1.inputs.authorizedKey, "ssh-ed25519 AAAAstack fou-tunnel");
    assert.equal(k1.inputs.network, "lv-network-id", "a bridge made again replaces the VMs on it");
    assert.equal(res("lv-k2").inputs.fou, false);
    for (const name of ["lv-k1", "lv-k2"]) {
        assert.deepEqual(options.get(name)?.dependsOn, [vms.network]);
        assert.equal(options.get(name)?.deleteBeforeReplace, true, "old and new VM share an address, tap and state dir");
    }
});

test("each VM has its own host key, made in the stack (secret) and handed to vm.sh; the stack key is separate", () => {
    for (const [vm, name] of [["k1", "lv-k1-host-key"], ["k2", "lv-k2-host-key"]]) {
        const key = res(name);
        assert.equal(key.type, "command:local:Command");
        assert.equal(key.inputs.create, keygenScript(`root@${vm}`));
        assert.equal(key.inputs.logging, "none");
        assert.deepEqual(options.get(name)?.additionalSecretOutputs, ["stdout"]);
        assert.equal(key.inputs.triggers, undefined, "nothing replaces a host key: it survives its VM");
        const inputs = res(`lv-${vm}`).inputs;
        assert.ok(isSecretInput(inputs.hostPrivateKey), "the private host key is secret");
        assert.equal(plain(inputs.hostPrivateKey), splitKeyPair(hostKeyText(name)).privateKey);
        assert.equal(inputs.hostPublicKey, `ssh-ed25519 AAAAlv${vm}hostkey`);
    }
    assert.equal(res("lv-ssh-key").inputs.create, keygenScript("fou-tunnel"));
    // The key script makes a real key pair, printed as the splitter expects.
    const pair = splitKeyPair(execFileSync("sh", ["-c", keygenScript("root@k1; touch /tmp/fou-keygen-pwned")], { encoding: "utf8" }));
    assert.match(pair.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+-----END OPENSSH PRIVATE KEY-----\n$/);
    assert.match(pair.publicKey, /^ssh-ed25519 [A-Za-z0-9+/=]+ root@k1; touch \/tmp\/fou-keygen-pwned$/);
    assert.ok(!existsSync("/tmp/fou-keygen-pwned"));
    assert.equal(publicKeyOnly(pair.publicKey), pair.publicKey.split(" ").slice(0, 2).join(" "));
});

test("hosts: SSH as root with the stack's key, the VM's host key pinned before boot, bounded dials", async () => {
    assert.deepEqual(
        vms.hosts.map((h) => [h.name, h.underlayAddress, h.device]),
        [
            ["k1", "198.51.100.151", "eth0"],
            ["k2", "198.51.100.152", "eth0"],
        ],
    );
    assert.deepEqual(SSH_DIALS, { dialErrorLimit: 5, perDialTimeout: 10 });
    for (const [i, h] of vms.hosts.entries()) {
        const conn = (await valueOf(h.connection)) as unknown as Record<string, unknown>;
        assert.equal(conn.user, "root");
        assert.equal(conn.host, h.underlayAddress);
        assert.equal(conn.hostKey, `ssh-ed25519 AAAAlvk${i + 1}hostkey`);
        assert.deepEqual([conn.dialErrorLimit, conn.perDialTimeout], [5, 10]);
        assert.match(String(conn.privateKey), /^-----BEGIN OPENSSH PRIVATE KEY-----\nstack\n-----END OPENSSH PRIVATE KEY-----\n$/);
    }
    assert.equal(await (vms.privateKey as any).isSecret, true);
    // What a tunnel step sends: the same bounded connection.
    const sent = plain(res("k1-prep-kernel").inputs.connection);
    assert.deepEqual([sent.host, sent.hostKey, sent.dialErrorLimit, sent.perDialTimeout], ["198.51.100.151", "ssh-ed25519 AAAAlvk1hostkey", 5, 10]);
});

test("a host's identity is its VM resource's id (not its host key), and its commands are deleted with the VM", async () => {
    for (const [i, h] of vms.hosts.entries()) {
        assert.equal(await valueOf(h.identity!), `lv-k${i + 1}-id`);
        assert.equal(h.deletedWith, vms.machines[i]);
        assert.deepEqual(h.readyAfter, [vms.machines[i]]);
    }
    // As the components declare them: the VM's id in the triggers, deletedWith the VM.
    assert.ok(plain(res("k1-prep-kernel").inputs.triggers).includes("lv-k1-id"));
    assert.equal(options.get("k1-prep-kernel")?.deletedWith, vms.machines[0]);
});

test("the vms output is each VM's report, without its host key", async () => {
    assert.deepEqual(await valueOf(vms.vms), [
        { name: "k1", pid: 4242, bootSeconds: 17.5, accel: "tcg", kernelRelease: "6.1.0-56-amd64" },
        { name: "k2", pid: 4242, bootSeconds: 17.5, accel: "tcg", kernelRelease: "6.1.0-56-amd64" },
    ]);
});

test("the providers are self-contained: their stored code requires Node's built-in modules only", () => {
    for (const text of [NETWORK_PROVIDER_MODULE, VM_PROVIDER_MODULE]) {
        const required = new Set([...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
        assert.ok(required.has("child_process"), text.slice(0, 500));
        for (const m of required) {
            assert.ok(["child_process", "crypto", "fs", "net"].includes(m), `the provider requires ${m}`);
        }
    }
});

// ---------------------------------------------------------------- the providers, against stub scripts

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
