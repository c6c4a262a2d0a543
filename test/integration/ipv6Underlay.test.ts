/**
 * Tunnels over an IPv6 underlay, between existing servers (host kind `ssh`): three VMs started
 * outside any stack (vm/vm.sh) that log in over IPv4 and carry their tunnels over IPv6 addresses
 * of 2001:db8::/32 which their "network" (the test) gave them. k1–k2 is the guide's tunnel, IPv4
 * GWIPs inside, as ip6tnl ipip6 over FOU; k1–k3 carries IPv6 inside, as ip6tnl ip6ip6 over GUE;
 * k2–r4 joins k2 to a far end the stack does not manage, r4, whose end the test makes with the
 * `ip` lines of output `externalEnds` (the stack's first `up` has its check off: r4 has no end
 * yet). Shown: every tunnel passes pings both ways, the UDP on the wire is IPv6 (`tcpdump ip6 and
 * udp port …`), the MTU outputs are the kernel's, an `up` without changes changes nothing, a
 * link deleted by hand is seen by `preview --refresh` and repaired by `up --refresh`, and destroy
 * leaves each managed VM byte for byte as before and r4's end in place. Run under the VM lock:
 * flock /tmp/fou-vm.lock …
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { explain, hostSnapshot, snapshotDiff, ssh, TestStack } from "./harness";
import { OutsideVms } from "./outsideVms";

const LOGIN = { k1: "198.51.100.191", k2: "198.51.100.192", k3: "198.51.100.193", r4: "198.51.100.194" } as const;
const V6 = { k1: "2001:db8:5155::191", k2: "2001:db8:5155::192", k3: "2001:db8:5155::193", r4: "2001:db8:5155::194" } as const;
type Name = keyof typeof LOGIN;
const NAMES = Object.keys(LOGIN) as Name[];
/** The hosts the stack manages; r4 is a far end. */
const MANAGED = NAMES.filter((n) => n !== "r4");
const vms = new OutsideVms({ name: "ipv6", bridge: "fv6-br" });
const VMS = NAMES.map((n, i) => vms.vm(n, LOGIN[n], `fv6-${n}`, `52:54:00:5e:01:9${i + 1}`));
const stack = new TestStack("itest-ipv6");
const timings: Record<string, number> = {};
const baseline: Partial<Record<Name, string>> = {};
let key = "";
let farUndo: string[] = [];

/** The two tunnels: name, ends, port, GWIPs (as the topology gives them), the inner ping's flag. */
const TUNNELS = [
    { name: "k1-k2", a: "k1", b: "k2", port: 5555, gwips: ["10.10.10.1", "10.10.10.2"], kind: /ip6tnl ipip6 /, encap: "fou" },
    { name: "k1-k3", a: "k1", b: "k3", port: 5556, gwips: ["fd00:10:10:10::1", "fd00:10:10:10::2"], kind: /ip6tnl ip6ip6 /, encap: "gue" },
    { name: "k2-r4", a: "k2", b: "r4", port: 5555, gwips: ["10.10.10.3", "10.10.10.4"], kind: /ip6tnl ipip6 /, encap: "fou" },
] as const;

before(async () => {
    vms.open();
    key = vms.key;
    timings.boot = await vms.start(VMS);
    // The servers' IPv6 addresses, as their network gives them (no DAD wait on the test bridge).
    for (const n of NAMES) ssh(key, LOGIN[n], `ip -6 addr add ${V6[n]}/64 dev eth0 nodad`);
    for (const n of NAMES.slice(1)) ssh(key, LOGIN.k1, `ping -6 -n -c 1 -W 5 ${V6[n]} >/dev/null`);
});

after(async () => {
    await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    await stack.remove();
    await vms.close();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

/** Pings from A's GWIP to B's through the tunnel while B captures `ip6 and udp port P` on its underlay. */
function pingOverIpv6(from: Name, fromGwip: string, to: Name, toGwip: string, port: number): { ping: string; cap: string } {
    ssh(
        key,
        LOGIN[to],
        `rm -f /tmp/cap; (timeout 20 tcpdump -nn -l -i eth0 -c 6 'ip6 and udp port ${port}' >/tmp/cap 2>/tmp/cap.err &); for i in $(seq 50); do grep -q listening /tmp/cap.err && break; sleep 0.1; done`,
    );
    const ping = ssh(key, LOGIN[from], `ping -n -c 3 -W 2 -I ${fromGwip} ${toGwip}`);
    const cap = ssh(key, LOGIN[to], "sleep 1; cat /tmp/cap");
    return { ping, cap };
}

test("up builds ipip6 over FOU (k1–k2, k2–r4) and ip6ip6 over GUE (k1–k3) on IPv6 underlay addresses; r4 makes its end from the output's ip lines; the stack's check passes", async () => {
    for (const n of MANAGED) baseline[n] = hostSnapshot(key, LOGIN[n]);
    const topology = path.join(vms.dir, "ipv6.yaml");
    writeFileSync(
        topology,
        [
            "hosts:",
            ...MANAGED.flatMap((n) => [`  - name: ${n}`, `    ssh: {address: ${LOGIN[n]}, hostKey: ${vms.hostKeys[n]}}`, `    underlayAddress: "${V6[n]}"`]),
            "  - name: r4",
            `    external: {address: "${V6.r4}"}`,
            "tunnels:",
            "  - hosts: [k1, k2]",
            "  - {hosts: [k1, k3], protocol: sit, encap: gue, port: 5556}",
            "  - hosts: [k2, r4]",
            "",
        ].join("\n"),
    );
    await stack.init({ hosts: "ssh", topology, check: false });
    stack.setSecret("sshPrivateKey", key);
    const first = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upUnchecked = first.seconds;
    // r4's end, by hand, from the output: no networkd files over IPv6 (the note says why).
    const far = (await stack.outputs()).externalEnds.r4;
    assert.deepEqual(far.networkd, {});
    assert.match(far.note, /networkd's ip6tnl and ip6gre netdevs take no FOU or GUE encapsulation/);
    ssh(key, LOGIN.r4, ["set -e", ...far.commands].join("\n"));
    farUndo = far.undo;
    assert.deepEqual(farUndo, ["ip link del dev 'ftok2'", "ip fou del port '5555' -6"]);
    await stack.setConfig({ check: true });
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.up = r.seconds;
    const out = await stack.outputs();
    assert.deepEqual(out.underlay, { k1: V6.k1, k2: V6.k2, k3: V6.k3 });
    assert.equal(out.verification.length, 5, JSON.stringify(out.verification));
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 1 && v.udpFromPeer >= 1, JSON.stringify(v));
        assert.match(v.sample, /^IP6 2001:db8:5155::19\d\.\d+ > 2001:db8:5155::19\d\.555[56]: UDP/, JSON.stringify(v));
    }
    assert.deepEqual(out.gwips, {
        "k1-k2": { k1: "10.10.10.1", k2: "10.10.10.2" },
        "k1-k3": { k1: "fd00:10:10:10::1", k3: "fd00:10:10:10::2" },
        "k2-r4": { k2: "10.10.10.3", r4: "10.10.10.4" },
    });
    // The kernel's links and ports: ip6tnl without an encapsulation limit, IPv6 ports.
    const k1 = ssh(key, LOGIN.k1, "ip -d link show ftok2; ip -d link show ftok3; ip fou show");
    assert.match(k1, new RegExp(`ip6tnl ipip6 remote ${V6.k2} local ${V6.k1} dev eth0 hoplimit 255 encaplimit none .*encap fou encap-sport auto encap-dport 5555 .*encap-csum6`));
    assert.match(k1, new RegExp(`ip6tnl ip6ip6 remote ${V6.k3} local ${V6.k1} dev eth0 hoplimit 255 encaplimit none .*encap gue encap-sport auto encap-dport 5556 `));
    assert.match(k1, /^port 5555 ipproto 4 -6$/m);
    assert.match(k1, /^port 5556 gue -6$/m);
    // The firewall admits each peer by its IPv6 address.
    const rules = ssh(key, LOGIN.k1, "nft list ruleset");
    assert.match(rules, new RegExp(`udp dport 5555 ip6 saddr (\\{ )?${V6.k2}( \\})? accept`), rules);
    assert.match(rules, new RegExp(`udp dport 5556 ip6 saddr (\\{ )?${V6.k3}( \\})? accept`), rules);
    // The MTU outputs are what the kernel gave each (managed) link.
    for (const t of TUNNELS) {
        for (const [n, ifname] of [
            [t.a, `fto${t.b}`],
            [t.b, `fto${t.a}`],
        ] as const) {
            if (n === "r4") continue;
            const kernel = Number(ssh(key, LOGIN[n], `cat /sys/class/net/${ifname}/mtu`).trim());
            assert.equal(out.mtu[t.name][n], kernel, `${t.name} on ${n}`);
        }
    }
    console.log(`MTUs: ${JSON.stringify(out.mtu)}`);
});

test("each tunnel passes pings both ways, carried in UDP over IPv6 on the wire", () => {
    for (const t of TUNNELS) {
        for (const [from, fg, to, tg] of [
            [t.a, t.gwips[0], t.b, t.gwips[1]],
            [t.b, t.gwips[1], t.a, t.gwips[0]],
        ] as const) {
            const { ping, cap } = pingOverIpv6(from, fg, to, tg, t.port);
            assert.match(ping, /3 packets transmitted, 3 received/, `${t.name} ${from}→${to}: ${ping}`);
            assert.ok(cap.includes(`IP6 ${V6[from]}.`) && cap.includes(`> ${V6[to]}.${t.port}: UDP`), `${t.name} ${from}→${to}:\n${cap}`);
            assert.ok(cap.includes(`IP6 ${V6[to]}.`) && cap.includes(`> ${V6[from]}.${t.port}: UDP`), `${t.name} ${to}→${from} (the replies):\n${cap}`);
        }
    }
});

test("an up without changes changes nothing", async () => {
    const r = await stack.pulumi(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    timings.noChange = r.seconds;
    assert.equal(r.code, 0, explain(r));
});

interface Step {
    op: string;
    urn: string;
}

test("k1's ipip6 link deleted by hand: preview --refresh shows its repair, up --refresh makes it again, and a refresh after finds nothing", async () => {
    ssh(key, LOGIN.k1, "ip link del ftok2");
    const p = await stack.ok(["preview", "--refresh", "--json"]);
    const steps = (JSON.parse(p.stdout).steps as Step[]).filter((s) => s.op !== "same" && s.op !== "refresh" && !s.urn.includes("pulumi:pulumi:Stack"));
    const name = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
    const changed = Object.fromEntries(steps.map((s) => [name(s.urn), s.op]));
    assert.equal(changed["fou-k1-k2-k1-link-probe"], "replace", JSON.stringify(changed));
    assert.equal(changed["fou-k1-k2-k1-link"], "update", JSON.stringify(changed));
    assert.ok(!Object.keys(changed).some((n) => n.includes("k1-k3")), `the other tunnel is not touched: ${JSON.stringify(changed)}`);
    const r = await stack.ok(["up", "--refresh", "--yes", "--skip-preview"]);
    timings.repair = r.seconds;
    assert.match(ssh(key, LOGIN.k1, "ip -d link show ftok2"), /ip6tnl ipip6 /);
    const { ping } = pingOverIpv6("k1", "10.10.10.1", "k2", "10.10.10.2", 5555);
    assert.match(ping, /3 packets transmitted, 3 received/);
    const again = await stack.pulumi(["up", "--refresh", "--yes", "--skip-preview", "--expect-no-changes"]);
    assert.equal(again.code, 0, `after the repair, a refresh finds nothing more:\n${explain(again)}`);
});

test("destroy leaves each managed VM byte for byte as before, and r4's end, which is not the stack's", async () => {
    const r = await stack.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = r.seconds;
    for (const n of MANAGED) assert.equal(snapshotDiff(baseline[n]!, hostSnapshot(key, LOGIN[n])), "", n);
    assert.match(ssh(key, LOGIN.r4, "ip -d link show ftok2"), /ip6tnl ipip6 /);
    // Its operator takes it down with the output's undo lines.
    ssh(key, LOGIN.r4, ["set -e", ...farUndo].join("\n"));
    assert.equal(ssh(key, LOGIN.r4, "ip fou show; ip -o link show type ip6tnl | grep -v ip6tnl0 || true"), "");
});
