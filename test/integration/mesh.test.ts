/**
 * Three real VMs, the full mesh of topologies/mesh3.yaml: k1-k2 IPIP over FOU with a prefix
 * routed behind k2, k1-k3 IPIP over GUE with a fixed source port and UDP checksums, k2-k3 sit
 * (IPv6 inside) over GUE sharing k3's GUE port with k1-k3; every tunnel persistent. Shown here:
 * all of them pass packets as UDP on their ports; a targeted destroy of one tunnel leaves the
 * shared port and the other tunnels working; a rebooted VM has its tunnels back without
 * `pulumi up` (and not the destroyed one); removing the tunnels restores every VM exactly;
 * destroy leaves nothing on this machine.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { after, test } from "node:test";
import { localNames } from "../../hosts/local";
import { hostState, pingAndCapture, rebootVm, routed, ssh, TestStack } from "./harness";

const K = { k1: "198.51.100.151", k2: "198.51.100.152", k3: "198.51.100.153" } as const;
type Host = keyof typeof K;
const HOSTS = Object.keys(K) as Host[];

const stack = new TestStack("mesh");
const timings: Record<string, number> = {};
let key = "";
let gwips: Record<string, Record<string, string>> = {};
let interfaces: Record<string, Record<string, string>> = {};
const baseline: Record<string, string> = {};

after(async () => {
    await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    await stack.remove();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

/** The steps `pulumi preview --json` plans, with their full inputs (the text preview elides long ones). */
async function planSteps(): Promise<{ op: string; urn: string; newState?: { inputs?: Record<string, unknown> } }[]> {
    const r = await stack.ok(["preview", "--json"]);
    return JSON.parse(r.stdout).steps ?? [];
}

const URN = (tail: string) => `urn:pulumi:mesh::fou-tunnel::${tail}`;
const TUNNEL_URN = (name: string) => URN(`fou:index:FouTopology$fou:index:FouTunnel::fou-${name}`);
const PORT_URN = (name: string) => URN(`fou:index:FouTopology$fou:index:FouPort::fou-${name}`);

test("the test network is free", () => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed here (another stack up?)");
});

test("three VMs come up; their clean state is recorded", async () => {
    await stack.init({ topology: "topologies/mesh3.yaml", tunnel: false });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upVms = r.seconds;
    const out = await stack.outputs();
    key = out.sshPrivateKey;
    assert.deepEqual(out.underlay, K);
    for (const h of HOSTS) {
        baseline[h] = hostState(key, K[h]);
    }
});

test("up builds the mesh: three tunnels, each end's check passes", async () => {
    await stack.setConfig({ tunnel: true });
    // The plan carries the real commands: GUE ports, sit, the fixed source port and checksums.
    const planned = (await planSteps()).map((s) => String(s.newState?.inputs?.stdin ?? s.newState?.inputs?.create ?? "")).join("\n");
    assert.match(planned, /ip fou add port '5556' gue/);
    assert.match(planned, /type sit remote/);
    assert.match(planned, /encap gue encap-sport '5600' encap-dport '5556' encap-csum/);
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upMesh = r.seconds;
    const out = await stack.outputs();
    gwips = out.gwips;
    interfaces = out.interfaces;
    assert.deepEqual(Object.keys(gwips).sort(), ["k1-k2", "k1-k3", "k2-k3"]);
    assert.deepEqual(gwips["k1-k2"], { k1: "10.10.10.1", k2: "10.10.10.2" });
    assert.match(gwips["k2-k3"].k2, /^fd00:/);
    assert.equal(out.verification.length, 6);
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 3 && v.udpFromPeer >= 3, JSON.stringify(v));
    }
    // One receive port per host and binding: k3's GUE port serves both of its tunnels.
    const k3port = out.ports.filter((p: { host: string }) => p.host === "k3");
    assert.deepEqual(k3port.map((p: { port: number; encap: string; tunnels: string[] }) => [p.port, p.encap, p.tunnels]), [[5556, "gue", ["k1-k3", "k2-k3"]]]);
    assert.equal(ssh(key, K.k3, "ip fou show"), "port 5556 gue\n");
    assert.equal(ssh(key, K.k1, "ip fou show | sort"), "port 5555 ipproto 4\nport 5556 gue\n");
});

test("k1-k3 is IPIP over GUE from source port 5600 with UDP checksums, on the wire", () => {
    const link = ssh(key, K.k1, `ip -d link show dev ${interfaces["k1-k3"].k1}`);
    assert.match(link, /ipip (any )?remote 198\.51\.100\.153 local 198\.51\.100\.151/);
    assert.match(link, /encap gue encap-sport 5600 encap-dport 5556 encap-csum/);
    const { ping, cap } = pingAndCapture(key, K.k1, gwips["k1-k3"].k1, K.k3, gwips["k1-k3"].k3, 5556, true);
    assert.match(ping, /3 packets transmitted, 3 received/);
    assert.ok(cap.includes(`${K.k1}.5600 > ${K.k3}.5556: [udp sum ok] UDP`), cap);
});

test("k2-k3 carries IPv6 over sit in GUE", () => {
    const link = ssh(key, K.k2, `ip -d link show dev ${interfaces["k2-k3"].k2}`);
    assert.match(link, /\bsit\b.*remote 198\.51\.100\.153 local 198\.51\.100\.152/);
    assert.match(link, /encap gue encap-sport auto encap-dport 5556/);
    const { ping, cap } = pingAndCapture(key, K.k2, gwips["k2-k3"].k2, K.k3, gwips["k2-k3"].k3, 5556);
    assert.match(ping, /3 packets transmitted, 3 received/);
    assert.ok(cap.includes(`> ${K.k3}.5556: UDP`), cap);
});

test("a prefix routed behind k2 is reachable from k1 through k1-k2", () => {
    // Something to reach: an address of 10.20.2.0/24 on k2 (made here, removed below).
    ssh(key, K.k2, "ip link add fouprefix type dummy && ip addr add 10.20.2.1/24 dev fouprefix && ip link set fouprefix up");
    try {
        assert.match(ssh(key, K.k1, "ip route show 10.20.2.0/24"), new RegExp(`via ${gwips["k1-k2"].k1.replace(/\./g, "\\.")} dev ${interfaces["k1-k2"].k1}`));
        const { ping, cap } = pingAndCapture(key, K.k1, gwips["k1-k2"].k1, K.k2, "10.20.2.1", 5555);
        assert.match(ping, /3 packets transmitted, 3 received/);
        assert.ok(cap.includes(`> ${K.k2}.5555: UDP`), cap);
        // The prefix is routed from k1 only: k3 has no way to it.
        assert.equal(ssh(key, K.k3, "ip route show 10.20.2.0/24"), "");
    } finally {
        ssh(key, K.k2, "ip link del fouprefix");
    }
});

test("a shared port is not deleted while a tunnel uses it: pulumi refuses", async () => {
    const r = await stack.pulumi(["destroy", "--yes", "--skip-preview", "--target", PORT_URN("k3-gue-5556")]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout + r.stderr, /depend|target-dependents/i);
    assert.equal(ssh(key, K.k3, "ip fou show"), "port 5556 gue\n");
});

test("a targeted destroy of k1-k3 removes it and its own port, and leaves the shared port and k2-k3", async () => {
    const r = await stack.ok(["destroy", "--yes", "--skip-preview", "--target", TUNNEL_URN("k1-k3"), "--target", PORT_URN("k1-gue-5556"), "--target-dependents"]);
    timings.destroyOneTunnel = r.seconds;
    assert.match(r.stdout, /^\s*-\s+command:remote:Command fou-k1-k3-k1-link deleted/m);
    assert.doesNotMatch(r.stdout, /^\s*-\s+command:remote:Command fou-(k2-k3|k1-k2)-/m, "other tunnels untouched");
    assert.equal(ssh(key, K.k1, "ip fou show"), "port 5555 ipproto 4\n");
    assert.equal(ssh(key, K.k3, "ip fou show"), "port 5556 gue\n");
    for (const [h, ifname] of [["k1", interfaces["k1-k3"].k1], ["k3", interfaces["k1-k3"].k3]] as const) {
        assert.equal(ssh(key, K[h], `ip link show dev ${ifname} 2>/dev/null || true`), "", `${ifname} gone from ${h}`);
        assert.equal(ssh(key, K[h], `ls /etc/systemd/system | grep -c ${ifname}.service || true`).trim(), "0");
    }
    const { ping } = pingAndCapture(key, K.k2, gwips["k2-k3"].k2, K.k3, gwips["k2-k3"].k3, 5556);
    assert.match(ping, /3 received/);
});

test("k3 rebooted: its persisted tunnel and shared port are back without pulumi up, the destroyed one is not", async () => {
    timings.reboot = await rebootVm(key, K.k3);
    const state = ssh(key, K.k3, "systemctl is-active fou-tunnel-mesh-port-5556.service; ip fou show; ip -o link show | awk -F': ' '{print $2}'; cat /proc/sys/net/ipv4/ip_forward");
    assert.match(state, /^active$/m);
    assert.match(state, /^port 5556 gue$/m);
    assert.match(state, new RegExp(`^${interfaces["k2-k3"].k3}@`, "m"));
    assert.doesNotMatch(state, new RegExp(`^${interfaces["k1-k3"].k3}@`, "m"));
    // k3's tunnels route only GWIPs: forwarding stays off, across the reboot too.
    assert.match(state, /^0$/m);
    // Its persisted port came back closed to strangers: the firewall's boot unit reloaded the rules.
    assert.match(ssh(key, K.k3, "nft list ruleset"), /udp dport 5556 ip saddr \{ 198\.51\.100\.151, 198\.51\.100\.152 \} accept/);
    assert.match(ssh(key, K.k3, `ip -o addr show dev ${interfaces["k2-k3"].k3}`), new RegExp(`inet6 ${gwips["k2-k3"].k3}/128`));
    const { ping, cap } = pingAndCapture(key, K.k2, gwips["k2-k3"].k2, K.k3, gwips["k2-k3"].k3, 5556);
    assert.match(ping, /3 received/);
    assert.ok(cap.includes(`> ${K.k3}.5556: UDP`), cap);
    // The stack agrees: nothing to do but bring back what the targeted destroy took.
    const changes = (await planSteps()).filter((s) => s.op !== "same").map((s) => s.urn);
    assert.ok(changes.length > 0);
    for (const urn of changes) {
        assert.match(urn, /::fou-(k1-k3|k1-gue-5556)(-|$)/, "only k1-k3 and its port are planned");
    }
});

test("removing the tunnels restores every VM exactly (the rebooted one too)", async () => {
    await stack.setConfig({ tunnel: false });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upTunnelsRemoved = r.seconds;
    for (const h of HOSTS) {
        assert.equal(hostState(key, K[h]), baseline[h], h);
    }
});

test("destroy leaves nothing of the stack on this machine", async () => {
    const r = await stack.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = r.seconds;
    const names = HOSTS.map((_, i) => localNames("fou-tunnel/mesh", i));
    const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
    for (const n of names) {
        assert.ok(!links.includes(n.tap), `tap ${n.tap} removed`);
        assert.ok(!links.includes(n.bridge), `bridge ${n.bridge} removed`);
        assert.ok(!existsSync(n.runDir), `${n.runDir} removed`);
    }
    const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    assert.ok(!ps.split("\n").some((l) => l.includes("qemu") && l.includes(names[0].runDir)), "no qemu of the stack");
    assert.ok(!routed("198.51.100.0/24"));
});
