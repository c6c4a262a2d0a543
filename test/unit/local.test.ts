import assert from "node:assert/strict";
import { before, test } from "node:test";
import { recorded, root, settle, valueOf } from "./mocks";
import { DEFAULT_LOCAL } from "../../config";
import { LocalVms, localNames } from "../../hosts/local";

let vms: LocalVms;
before(async () => {
    vms = new LocalVms(
        "lv",
        { settings: { ...DEFAULT_LOCAL, vms: [DEFAULT_LOCAL.vms[0], { ...DEFAULT_LOCAL.vms[1], fou: false }] }, stackId: "fou-tunnel/unit" },
        { parent: root },
    );
    await valueOf(vms.vms);
    await settle();
});

function cmd(name: string) {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no resource ${name}`);
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

test("the bridge, the VMs and the key are local commands with quoted arguments and an undo", () => {
    const n = localNames("fou-tunnel/unit", 0);
    const net = cmd("lv-network").inputs;
    assert.equal(net.create, `./vm/net.sh up --bridge '${n.bridge}' --address '198.51.100.1/24'`);
    assert.match(net.delete, new RegExp(`^\\./vm/net\\.sh down --bridge '${n.bridge}'`));
    const k1 = cmd("lv-k1").inputs;
    assert.match(k1.create, /^\.\/vm\/vm\.sh start --name 'k1' --address '198\.51\.100\.151\/24' --bridge '[^']+' --tap '[^']+' --mac '[^']+' --state-dir '\/run\/fou-tunnel\/[0-9a-f]+\/k1' --memory '768' --authorized-key 'ssh-ed25519 AAAA fou-tunnel'$/);
    assert.equal(k1.delete, `./vm/vm.sh stop --state-dir '${n.runDir}/k1'`);
    assert.match(cmd("lv-k2").inputs.create, / --no-fou$/, "fou: false boots k2 without a usable fou");
    assert.equal(cmd("lv-ssh-key").inputs.logging, "none", "the key generation prints nothing to the log");
});

test("hosts: SSH as root with the stack's key (secret), the VM's host key pinned, its identity set", async () => {
    assert.deepEqual(
        vms.hosts.map((h) => [h.name, h.underlayAddress, h.device]),
        [
            ["k1", "198.51.100.151", "eth0"],
            ["k2", "198.51.100.152", "eth0"],
        ],
    );
    const conn = (await valueOf(vms.hosts[0].connection)) as unknown as Record<string, unknown>;
    assert.equal(conn.user, "root");
    assert.equal(conn.hostKey, "ssh-ed25519 AAAAhost");
    assert.match(String(conn.privateKey), /^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]*-----END OPENSSH PRIVATE KEY-----\n$/);
    assert.equal(await valueOf(vms.hosts[0].identity!), "ssh-ed25519 AAAAhost");
    assert.equal(await (vms.privateKey as any).isSecret, true);
});

test("the vms output is each VM's report, without its host key", async () => {
    assert.deepEqual(await valueOf(vms.vms), [
        { name: "lv-k1", pid: 1 },
        { name: "lv-k2", pid: 1 },
    ]);
});
