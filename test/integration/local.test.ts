/**
 * The main job, for real: `pulumi up` of the local stack boots two new-kernel VMs and builds the
 * guide's tunnel; packets cross it as UDP to the FOU port; a second up changes nothing; a port
 * change rebuilds exactly the port-bound objects; removing the tunnel restores the hosts; destroy
 * leaves nothing on this machine. Then a host without fou fails in HostPrep, and destroy still
 * cleans up.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { after, test } from "node:test";
import { fouPortObject } from "../../components/fouPort";
import { gwipObject } from "../../components/gwip";
import { ipForwardScripts, kernelScripts } from "../../components/hostPrep";
import { CommandScripts, standalone } from "../../components/host";
import { objectScripts, stateFile } from "../../components/hostState";
import { ipipFouLinkObject } from "../../components/ipipFouLink";
import { routeObject } from "../../components/route";
import { localNames } from "../../hosts/local";
import { explain, pingAndCapture as pingAndCaptureWith, routed, ssh, hostState as stateOf, TestStack } from "./harness";

// The guide's addresses on TEST-NET-2, on a bridge of the test stack's own (the dev stack must be down:
// two bridges cannot route one subnet). TEST-NET-3 is no good here: the apt mirror resolves into it.
const NET = { localGateway: "198.51.100.1/24", localVms: [{ name: "k1", address: "198.51.100.151" }, { name: "k2", address: "198.51.100.152" }] };
const K1 = "198.51.100.151";
const K2 = "198.51.100.152";

const stack = new TestStack("itest");

/** Python: send one IPv4/UDP packet from argv[1] to argv[2]:argv[3] with a raw socket (the kernel fills lengths and checksum). */
const SPOOF = [
    "import socket, struct, sys",
    "src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])",
    "payload = bytes(20)",
    "udp = struct.pack('!HHHH', 40000, port, 8 + len(payload), 0) + payload",
    "ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))",
    "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)",
    "s.sendto(ip + udp, (dst, 0))",
].join("\n");
const timings: Record<string, number> = {};
let key = "";

after(async () => {
    // Whatever happened above, leave nothing behind.
    await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    await stack.remove();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

const hostState = (host: string) => stateOf(key, host);
const pingAndCapture = (from: string, fromGwip: string, to: string, toGwip: string, port: number) =>
    pingAndCaptureWith(key, from, fromGwip, to, toGwip, port);


/** A step's create and delete as a host runs each alone over SSH: the host library, then the script. */
function alone(s: CommandScripts): { create: string; delete: string } {
    return { create: standalone(s), delete: standalone(s, "delete") };
}

test("the test network is free", () => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed on this machine (is the dev stack up? scripts/pulumi destroy --stack dev); the test would disturb it");
});

test("up with the tunnel off boots two new-kernel VMs reachable over SSH", async () => {
    await stack.init({ ...NET, tunnel: false });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upVmsOnly = r.seconds;
    const out = await stack.outputs();
    key = out.sshPrivateKey;
    assert.match(key, /BEGIN OPENSSH PRIVATE KEY/);
    assert.deepEqual(out.gwips, {});
    for (const h of [K1, K2]) {
        const kernel = ssh(key, h, "uname -r; modinfo -F filename fou");
        assert.match(kernel, /^6\.\d+\.\d+-\d+-amd64\n.*fou\.ko/, kernel);
    }
});

let baseline: Record<string, string> = {};

test("up builds the guide's tunnel: outputs, pings both ways, UDP to port 5555 on the wire", async () => {
    baseline = { [K1]: hostState(K1), [K2]: hostState(K2) };
    await stack.setConfig({ tunnel: true });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upTunnel = r.seconds;
    const out = await stack.outputs();
    // The stack config's guide keys make one tunnel, k1-k2.
    assert.deepEqual(out.gwips, { "k1-k2": { k1: "10.10.10.1", k2: "10.10.10.2" } });
    assert.deepEqual(out.interfaces, { "k1-k2": { k1: "ftok2", k2: "ftok1" } });
    assert.deepEqual(out.underlay, { k1: K1, k2: K2 });
    assert.deepEqual(out.mtu, { "k1-k2": { k1: 1472, k2: 1472 } });
    assert.equal(out.tunnelSpecs["k1-k2"].port, 5555);
    assert.equal(out.verification.length, 2);
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 3 && v.udpFromPeer >= 3, JSON.stringify(v));
    }

    const k1 = hostState(K1);
    assert.match(k1, /^port 5555 ipproto 4$/m);
    assert.match(k1, /^ftok2$/m);
    assert.match(k1, /^ftok2 10\.10\.10\.1\/32$/m);
    assert.match(k1, /^10\.10\.10\.2 via 10\.10\.10\.1 dev ftok2/m);
    // A GWIP-only tunnel makes no router of its hosts: ip_forward is left as it was.
    assert.match(k1, /forward:\n0\n/);
    // The FOU port is open to the peer only (the stack's own nftables table).
    assert.match(ssh(key, K1, "nft list ruleset"), /udp dport 5555 ip saddr 198\.51\.100\.152 accept[\s\S]*udp dport 5555 counter packets \d+ bytes \d+ drop/);
    const link = ssh(key, K1, "ip -d link show dev ftok2");
    assert.match(link, /ipip (any )?remote 198\.51\.100\.152 local 198\.51\.100\.151 dev eth0 ttl 255/);
    assert.match(link, /encap fou encap-sport auto encap-dport 5555/);

    // Independently of the stack's own check: k1 → k2 and k2 → k1, captured on the receiver.
    for (const [from, fg, to, tg] of [
        [K1, "10.10.10.1", K2, "10.10.10.2"],
        [K2, "10.10.10.2", K1, "10.10.10.1"],
    ]) {
        const { ping, cap } = pingAndCapture(from, fg, to, tg, 5555);
        assert.match(ping, /3 packets transmitted, 3 received/);
        assert.ok(cap.includes(`IP ${from}.`) && cap.includes(`> ${to}.5555: UDP`), cap);
        assert.ok(cap.includes(`IP ${to}.`) && cap.includes(`> ${from}.5555: UDP`), cap);
    }
});

test("on a live host, every create runs twice without error and every delete twice, leaving nothing", () => {
    // Objects of their own (port 6100, link ftox, 10.99.99.0/24) so the stack's tunnel is untouched.
    const objects = [
        fouPortObject(6100, 4),
        ipipFouLinkObject({ ifname: "ftox", remote: "198.51.100.199", local: K1, device: "eth0", port: 6100, ttl: 64 }),
        gwipObject("ftox", "10.99.99.1"),
        routeObject("ftox", "10.99.99.2", "10.99.99.1"),
    ];
    const steps = objects.map((o, i) => alone(objectScripts(o, stateFile(`live-${i}`, "id", "itest-live"))));
    const before = hostState(K1);
    // The link's index, once it exists (the port comes first): a re-add would change it.
    const ifindex = () => ssh(key, K1, "cat /sys/class/net/ftox/ifindex 2>/dev/null || true");
    for (const s of steps) {
        const first = ssh(key, K1, s.create);
        const index = ifindex();
        // A second run is what the command plugin does after any input change, or a retry after a
        // crash: it adopts the live object, keeps its instance id and does not re-add the link.
        const second = ssh(key, K1, s.create);
        assert.match(first, /^instance=[0-9a-f-]{36}$/m);
        assert.equal(/^instance=.*$/m.exec(second)?.[0], /^instance=.*$/m.exec(first)?.[0], s.create);
        assert.equal(ifindex(), index, "the link was not deleted and added again");
    }
    const during = ssh(key, K1, "ip fou show; ip -o addr show dev ftox; ip route show dev ftox");
    assert.match(during, /^port 6100 ipproto 4$/m);
    assert.match(during, /inet 10\.99\.99\.1\/32/);
    assert.match(during, /^10\.99\.99\.2 via 10\.99\.99\.1/m);
    for (const s of [...steps].reverse()) {
        ssh(key, K1, s.delete!);
        ssh(key, K1, s.delete!);
    }
    assert.equal(hostState(K1), before);
});

test("the FOU port takes packets from the peer only: a spoofed stranger's are dropped and counted", () => {
    // From this machine, onto the test bridge only: UDP to k1's port 5555 from a stranger's
    // address (198.51.100.77) and from the peer's (198.51.100.152), raw so the source is ours to pick.
    const send = (source: string) =>
        execFileSync("python3", ["-c", SPOOF, source, K1, "5555"], { encoding: "utf8", timeout: 10_000 });
    const drops = () => Number(/udp dport 5555 counter packets (\d+)/.exec(ssh(key, K1, "nft list ruleset"))?.[1] ?? NaN);
    const before = drops();
    send("198.51.100.77");
    send("198.51.100.77");
    assert.equal(drops(), before + 2, "both stranger packets hit the drop rule");
    send("198.51.100.152");
    assert.equal(drops(), before + 2, "the peer's packet is accepted, not dropped");
});

test("firewall: false removes the stack's table from both hosts, and the tunnel still works", async () => {
    await stack.setConfig({ firewall: false });
    await stack.ok(["up", "--yes", "--skip-preview"]);
    for (const h of [K1, K2]) {
        assert.doesNotMatch(ssh(key, h, "nft list ruleset"), /fou_|udp dport 5555/);
    }
    assert.match(pingAndCapture(K1, "10.10.10.1", K2, "10.10.10.2", 5555).ping, /3 received/);
    await stack.setConfig({ firewall: undefined });
    await stack.ok(["up", "--yes", "--skip-preview"]);
    assert.match(ssh(key, K2, "nft list ruleset"), /udp dport 5555 ip saddr 198\.51\.100\.151 accept/);
});

test("a second up changes nothing", async () => {
    const preview = await stack.pulumi(["preview", "--expect-no-changes"]);
    assert.equal(preview.code, 0, explain(preview));
    const r = await stack.ok(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    timings.upNoChange = r.seconds;
    assert.match(r.stdout, /\d+ unchanged/);
    assert.doesNotMatch(r.stdout, /\d+ (created|updated|replaced|deleted)/);
});

test("changing the port replaces the port-bound objects and the tunnel works on the new port", async () => {
    await stack.setConfig({ port: 5556 });
    // The plan, from `preview --json` (the text preview elides long commands): the FOU ports are
    // new objects (their name carries the port), the links are replaced with the new
    // encap-dport, what sits on them is rebuilt with them, and the VMs are not touched.
    const plan = JSON.parse((await stack.ok(["preview", "--json"])).stdout).steps as {
        op: string;
        urn: string;
        newState?: { type: string; inputs?: Record<string, unknown> };
    }[];
    const changed = plan.filter((s) => s.op !== "same");
    const created = changed.map((s) => String(s.newState?.inputs?.stdin ?? s.newState?.inputs?.create ?? "")).join("\n");
    assert.match(created, /ip fou add port '5556' ipproto '4'/);
    assert.match(created, /^ip link add 'ftok2' .* encap-dport '5556'$/m);
    assert.ok(changed.some((s) => s.op === "replace" && s.urn.endsWith("::fou-k1-k2-k1-link")), "the link is replaced");
    assert.ok(changed.some((s) => s.op === "delete" && s.urn.endsWith("::fou-k1-fou-5555-fou")), "the old port goes");
    assert.ok(!changed.some((s) => s.urn.includes("command:local:Command")), "the VMs are not touched");
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upPortChange = r.seconds;
    const out = await stack.outputs();
    assert.equal(out.tunnelSpecs["k1-k2"].port, 5556);
    const k2 = hostState(K2);
    assert.match(k2, /^port 5556 ipproto 4$/m);
    assert.doesNotMatch(k2, /port 5555/);
    assert.match(ssh(key, K2, "ip -d link show dev ftok1"), /encap-dport 5556/);
    const { ping, cap } = pingAndCapture(K1, "10.10.10.1", K2, "10.10.10.2", 5556);
    assert.match(ping, /3 received/);
    assert.ok(cap.includes(`> ${K2}.5556: UDP`), cap);
    for (const v of out.verification) {
        assert.equal(v.received, 3);
    }
});

test("removing the tunnel (VMs kept) restores each host exactly as it was", async () => {
    await stack.setConfig({ tunnel: false });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upTunnelRemoved = r.seconds;
    for (const h of [K1, K2]) {
        assert.equal(hostState(h), baseline[h]);
    }
});

test("on a restored host, HostPrep's create runs twice and its delete twice, back to the original", () => {
    const modules = stateFile("prep-kernel", "modules", "itest-live");
    const steps = [kernelScripts(["fou", "ipip"], modules), ipForwardScripts(stateFile("prep-ip-forward", "ip_forward", "itest-live"))].map(alone);
    const runs = steps.map((s) => [ssh(key, K2, s.create), ssh(key, K2, s.create)]);
    // The first kernel run loads the modules and lists them on the host, each after what it
    // pulled in (udp_tunnel, ip_tunnel, tunnel4…: unloaded after it); the second finds them
    // loaded; the forwarding value first seen (0) is kept across runs.
    const listed = ssh(key, K2, `cat ${modules}`).trim().split("\n");
    assert.deepEqual(listed.filter((m) => m === "fou" || m === "ipip"), ["fou", "ipip"], listed.join(" "));
    assert.ok(listed.indexOf("udp_tunnel") < listed.indexOf("fou") && listed.indexOf("ip_tunnel") < listed.indexOf("ipip"), listed.join(" "));
    assert.equal(runs[0][1], runs[0][0]);
    assert.match(runs[1][1], /^previous=0$/m);
    assert.match(ssh(key, K2, "cat /proc/sys/net/ipv4/ip_forward"), /^1$/m);
    for (const i of [1, 0]) {
        // No PULUMI_COMMAND_STDOUT: what delete needs is on the host.
        ssh(key, K2, steps[i].delete!);
        ssh(key, K2, steps[i].delete!);
    }
    assert.equal(hostState(K2), baseline[K2]);
});

test("destroy leaves nothing of the stack on this machine", async () => {
    await stack.setConfig({ tunnel: true });
    await stack.ok(["up", "--yes", "--skip-preview"]);
    const names = [0, 1].map((i) => localNames("fou-tunnel/itest", i));
    const r = await stack.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = r.seconds;
    const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
    for (const n of names) {
        assert.ok(!links.includes(n.tap), `tap ${n.tap} removed`);
        assert.ok(!links.includes(n.bridge), `bridge ${n.bridge} removed`);
        assert.ok(!existsSync(n.runDir), `${n.runDir} removed`);
    }
    const qemu = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    assert.ok(!qemu.split("\n").some((l) => l.includes("qemu") && l.includes(names[0].runDir)), "no qemu of the stack");
    assert.ok(!routed("198.51.100.0/24"), "no route to the test network");
});

const nofou = new TestStack("itest-nofou");
after(async () => {
    await nofou.pulumi(["destroy", "--yes", "--skip-preview"]);
    await nofou.remove();
});

test("a host whose kernel has no fou fails in HostPrep with the fix named; destroy still cleans up", async () => {
    await nofou.init({ ...NET, localVms: [NET.localVms[0], { ...NET.localVms[1], fou: false }] });
    const r = await nofou.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(r.code, 0);
    const text = r.stdout + r.stderr;
    assert.match(text, /fou-tunnel: k2 runs Linux 6\.\S+ without the fou module: install a kernel built with it \(fou needs CONFIG_NET_FOU\) and reboot/);
    // Neither host got a tunnel object: both must pass HostPrep first.
    assert.match(text, /command:remote:Command fou-k2-prep-kernel \*\*creating failed\*\*/);
    assert.doesNotMatch(text, /command:remote:Command fou-(k1-k2-k\d-(link|addr|route|check)|k\d-fou-\d+-fou) (creating|created)/);
    const d = await nofou.ok(["destroy", "--yes", "--skip-preview"]);
    assert.equal(d.code, 0);
    const names = localNames("fou-tunnel/itest-nofou", 0);
    assert.ok(!execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).includes(names.bridge));
    assert.ok(!existsSync(names.runDir));
});
