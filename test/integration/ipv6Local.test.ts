/**
 * Local VMs over an IPv6 underlay: the stack's two VMs, each given an address of 2001:db8:5155::/64
 * on the test bridge by the stack itself (`underlayAddress` on a local host), carry the guide's
 * tunnel as ip6tnl ipip6 over FOU, and beside it a GRE tunnel (ip6gre) with every option set:
 * a fixed source port, an MTU, a hop limit, no UDP checksums; both persisted. Shown: the VMs get
 * their IPv6 addresses before any tunnel step, both tunnels pass pings both ways as UDP over IPv6 with
 * their options on the wire, an `up` without changes changes nothing, a rebooted VM has its
 * address and its persisted end back without `pulumi up`, and removing the tunnels leaves each
 * VM as it was before them. Run under the VM lock: flock /tmp/fou-vm.lock …
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { explain, hostState, rebootVm, routed, ssh, TestStack } from "./harness";

const K = { k1: "198.51.100.151", k2: "198.51.100.152" } as const;
const V6 = { k1: "2001:db8:5155::151", k2: "2001:db8:5155::152" } as const;
type Host = keyof typeof K;
const GWIPS = { k1: "10.10.10.1", k2: "10.10.10.2" } as const;
const GRE_GWIPS = { k1: "10.10.10.3", k2: "10.10.10.4" } as const;

const dir = mkdtempSync(path.join(tmpdir(), "fou-ipv6-local-"));
const topology = path.join(dir, "ipv6-local.yaml");
writeFileSync(
    topology,
    [
        "hosts:",
        `  - {name: k1, underlayAddress: "${V6.k1}"}`,
        `  - {name: k2, underlayAddress: "${V6.k2}"}`,
        "tunnels:",
        "  - {hosts: [k1, k2], persist: true}",
        "  - {hosts: [k1, k2], name: gre, protocol: gre, port: 5557, sport: 5600, mtu: 1400, ttl: 64, csum: false, persist: true, interfaces: [fgk2, fgk1]}",
        "",
    ].join("\n"),
);
const stack = new TestStack("ipv6-local");
const timings: Record<string, number> = {};
const baseline: Partial<Record<Host, string>> = {};
let key = "";

after(async () => {
    await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    await stack.remove();
    rmSync(dir, { recursive: true, force: true });
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

/** Pings k1 → k2 (or back) through a tunnel while the receiver captures `ip6 and udp port PORT` (-vv: checksums). */
function pingOverIpv6(from: Host, to: Host, gwips: Record<Host, string> = GWIPS, port = 5555): { ping: string; cap: string } {
    ssh(key, K[to], `rm -f /tmp/cap; (timeout 20 tcpdump -nn -vv -l -i eth0 -c 6 'ip6 and udp port ${port}' >/tmp/cap 2>/tmp/cap.err &); for i in $(seq 50); do grep -q listening /tmp/cap.err && break; sleep 0.1; done`);
    const ping = ssh(key, K[from], `ping -n -c 3 -W 2 -I ${gwips[from]} ${gwips[to]}`);
    return { ping, cap: ssh(key, K[to], "sleep 1; cat /tmp/cap") };
}

test("the test network is free", () => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed here (another stack up?)");
});

test("the VMs come up with their IPv6 underlay addresses, put there by the stack", async () => {
    await stack.init({ topology, tunnel: false });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upVms = r.seconds;
    const out = await stack.outputs();
    key = out.sshPrivateKey;
    assert.deepEqual(out.underlay, V6);
    for (const h of Object.keys(K) as Host[]) {
        assert.match(ssh(key, K[h], "ip -o -6 addr show dev eth0 scope global"), new RegExp(`inet6 ${V6[h]}/64 `));
        baseline[h] = hostState(key, K[h]);
    }
});

test("up builds the tunnels over IPv6: ip6tnl ipip6 and ip6gre with its options, -6 ports, the checks pass, pings both ways as UDP over IPv6", async () => {
    await stack.setConfig({ tunnel: true });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.up = r.seconds;
    const out = await stack.outputs();
    assert.equal(out.verification.length, 4);
    for (const v of out.verification) assert.ok(v.received === 3 && v.udpToPeer >= 1 && v.udpFromPeer >= 1, JSON.stringify(v));
    assert.match(ssh(key, K.k1, "ip -d link show ftok2"), new RegExp(`ip6tnl ipip6 remote ${V6.k2} local ${V6.k1} dev eth0 hoplimit 255 encaplimit none .* encap-csum6 `));
    const gre = ssh(key, K.k1, "ip -d link show fgk2");
    assert.match(gre, new RegExp(`ip6gre remote ${V6.k2} local ${V6.k1} dev eth0 hoplimit 64 encaplimit none .*encap fou encap-sport 5600 encap-dport 5557 .*noencap-csum6 `), gre);
    assert.match(gre, / mtu 1400 /, gre);
    assert.deepEqual(out.mtu.gre, { k1: 1400, k2: 1400 });
    assert.equal(ssh(key, K.k2, "ip fou show | sort"), "port 5555 ipproto 4 -6\nport 5557 ipproto 47 -6\n");
    for (const [from, to] of [
        ["k1", "k2"],
        ["k2", "k1"],
    ] as const) {
        const { ping, cap } = pingOverIpv6(from, to);
        assert.match(ping, /3 packets transmitted, 3 received/, `${from}→${to}`);
        assert.ok(cap.includes(`${V6[from]}.`) && cap.includes(`> ${V6[to]}.5555: [udp sum ok] UDP`), cap);
        // GRE: from source port 5600, hop limit 64, zero UDP checksums (csum: false).
        const g = pingOverIpv6(from, to, GRE_GWIPS, 5557);
        assert.match(g.ping, /3 packets transmitted, 3 received/, `gre ${from}→${to}`);
        assert.ok(g.cap.includes(`${V6[from]}.5600 > ${V6[to]}.5557: [bad udp cksum 0x0000`), g.cap);
        assert.match(g.cap, /hlim 64/, g.cap);
    }
    const again = await stack.pulumi(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    timings.noChange = again.seconds;
    assert.equal(again.code, 0, explain(again));
});

test("k2 rebooted: its IPv6 address and its ends of both tunnels come back without pulumi up", async () => {
    timings.reboot = await rebootVm(key, K.k2);
    const started = Date.now();
    let ping = "";
    while (Date.now() - started < 240_000) {
        await new Promise((r) => setTimeout(r, 3000));
        try {
            ping = ssh(key, K.k1, `ping -n -c 3 -W 2 -I ${GWIPS.k1} ${GWIPS.k2}`, 20_000);
            if (/3 received/.test(ping)) break;
        } catch (e) {
            ping = String(e);
        }
    }
    timings.backAfterReboot = (Date.now() - started) / 1000;
    assert.match(ping, /3 packets transmitted, 3 received/);
    assert.match(ssh(key, K.k2, "ip -o -6 addr show dev eth0 scope global"), new RegExp(`inet6 ${V6.k2}/64 `));
    assert.match(ssh(key, K.k1, `ping -n -c 3 -W 2 -I ${GRE_GWIPS.k1} ${GRE_GWIPS.k2}`), /3 packets transmitted, 3 received/, "the GRE tunnel is back too");
    // And the stack agrees: a refresh finds nothing to repair.
    const again = await stack.pulumi(["up", "--refresh", "--yes", "--skip-preview", "--expect-no-changes"]);
    assert.equal(again.code, 0, explain(again));
});

test("the tunnels removed: each VM is as before them (its IPv6 underlay address stays: it is the machine's)", async () => {
    await stack.setConfig({ tunnel: false });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.removeTunnel = r.seconds;
    for (const h of Object.keys(K) as Host[]) assert.equal(hostState(key, K[h]), baseline[h], h);
});
