/**
 * LocalVms under mocks: the bridge and the VMs as dynamic resources, each VM's host key made in
 * the stack, the hosts the tunnel components get (login, pinned key, bounded dials, identity),
 * and the names this machine gives the bridge and taps.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { recorded, settle, valueOf } from "./mocks";
import { isSecretInput, plain } from "./secretInputs";
import { DEFAULT_LOCAL } from "../../config";
import { HostPrep } from "../../components/hostPrep";
import { keygenScript, LocalVms, localNames, publicKeyOnly, splitKeyPair } from "../../hosts/local";
import { SSH_DIALS } from "../../lib/sshLogin";
import { NETWORK_PROVIDER_MODULE, VM_PROVIDER_MODULE } from "../../hosts/localProvider";

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
let v6: LocalVms;
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
    // The same VMs with an IPv6 underlay on k1.
    v6 = new LocalVms(
        "lv6",
        { settings: { ...DEFAULT_LOCAL, vms: [{ ...DEFAULT_LOCAL.vms[0], underlay6: "2001:db8:5155::151" }, DEFAULT_LOCAL.vms[1]] }, stackId: "fou-tunnel/unit6" },
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

test("a VM with an IPv6 underlay: the stack puts the address on its eth0 before any tunnel step, and its tunnels use it", () => {
    assert.deepEqual(v6.hosts.map((h) => h.underlayAddress), ["2001:db8:5155::151", "198.51.100.152"]);
    const add = res("lv6-k1-underlay");
    assert.equal(add.type, "command:remote:Command");
    // The step's program (its stdin) carries the object's apply and remove.
    assert.match(add.inputs.stdin, /^if ! .*then ip -6 addr add '2001:db8:5155::151\/64' dev 'eth0' nodad; fi$/m);
    assert.match(add.inputs.stdin, /ip -6 addr del '2001:db8:5155::151\/64' dev 'eth0'/);
    // Every tunnel step waits for it, as for the VM itself; k2 has none.
    const ready = v6.hosts[0].readyAfter ?? [];
    assert.equal(ready.length, 2);
    assert.equal(ready[0], v6.machines[0]);
    assert.equal(v6.hosts[1].readyAfter?.length, 1);
    assert.equal(recorded.some((r) => r.name === "lv6-k2-underlay"), false);
});
