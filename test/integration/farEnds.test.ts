/**
 * Far ends the stack does not manage, against peers that no code of this project configures:
 * three VMs started outside any stack (vm/vm.sh, as someone's servers). k1 is the stack's (host
 * kind `ssh`); r1 and r2 are `external:` hosts. The stack's first `up` (its check off: nothing
 * answers yet) builds k1's two ends and outputs `externalEnds`; the test then makes r1's end with
 * systemd-networkd from the output's `.netdev`/`.network` files (networkd and udev, masked in
 * the test image, started on r1 only) and r2's end with the output's `ip` lines, by hand. An
 * `up` with the check on verifies both tunnels from k1 (pings through them, UDP both ways on the
 * wire), and r1 and r2 ping k1 back through theirs. Destroy leaves k1 byte for byte as before
 * and the far ends' tunnels in place: they are not the stack's. Run under the VM lock: flock /tmp/fou-vm.lock …
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { explain, hostSnapshot, pingAndCapture, snapshotDiff, ssh, TestStack } from "./harness";
import { OutsideVms } from "./outsideVms";
import { shq } from "../../components/shell";

const K1 = "198.51.100.171";
const R1 = "198.51.100.172";
const R2 = "198.51.100.173";
const vms = new OutsideVms({ name: "farends", bridge: "ffe-br" });
const VMS = [
    vms.vm("k1", K1, "ffe-k1", "52:54:00:5e:01:71"),
    vms.vm("r1", R1, "ffe-r1", "52:54:00:5e:01:72"),
    vms.vm("r2", R2, "ffe-r2", "52:54:00:5e:01:73"),
];
const stack = new TestStack("itest-far");
const timings: Record<string, number> = {};
let key = "";
let baseline = "";

/** networkd on: the test image masks it and udev (its VMs take their address from the kernel command line). */
// networkd configures a new link only once udev has initialized it: udev, masked too, comes first.
const NETWORKD_ON = [
    "systemctl unmask --quiet systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service",
    "systemctl start systemd-udevd.service systemd-udev-trigger.service",
    "systemctl unmask --quiet systemd-networkd.service systemd-networkd.socket",
    "systemctl restart systemd-networkd.service",
];

interface FarEnd {
    readonly address: string;
    readonly tunnels: string[];
    readonly commands: string[];
    readonly networkd: Record<string, string>;
}

before(async () => {
    vms.open();
    key = vms.key;
    timings.boot = await vms.start(VMS);
});

after(async () => {
    await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
    await stack.remove();
    await vms.close();
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

test("up with the check off builds k1's two ends and gives each far end its ip lines and networkd files", async () => {
    baseline = hostSnapshot(key, K1);
    const topology = path.join(vms.dir, "far.yaml");
    writeFileSync(
        topology,
        [
            "hosts:",
            "  - name: k1",
            `    ssh: {address: ${K1}, hostKey: ${vms.hostKeys.k1}}`,
            "  - name: r1",
            `    external: {address: ${R1}}`,
            "  - name: r2",
            `    external: {address: ${R2}}`,
            "tunnels:",
            "  - hosts: [k1, r1]",
            "    routes: {r1: [10.50.0.0/24]}",
            "  - hosts: [k1, r2]",
            "    routes: {r2: [10.60.0.0/24]}",
            "",
        ].join("\n"),
    );
    await stack.init({ hosts: "ssh", topology, check: false });
    stack.setSecret("sshPrivateKey", key);
    const r = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.upUnchecked = r.seconds;
    const out = await stack.outputs();
    const ends = out.externalEnds as Record<string, FarEnd>;
    assert.deepEqual(Object.keys(ends).sort(), ["r1", "r2"]);
    assert.equal(ends.r1.address, R1);
    assert.ok(Object.keys(ends.r1.networkd).some((p) => p.endsWith(".netdev")), JSON.stringify(ends.r1.networkd));
    assert.ok(ends.r2.commands.some((l) => l.startsWith("ip link add ")), ends.r2.commands.join("\n"));
    // k1's ends exist; nothing of the stack is on r1 or r2.
    assert.match(ssh(key, K1, "ip -o link show"), /ftor1[@:][\s\S]*ftor2[@:]|ftor2[@:][\s\S]*ftor1[@:]/);
    for (const r of [R1, R2]) assert.equal(ssh(key, r, "ls /var/lib/fou-tunnel 2>/dev/null || true").trim(), "");

    // r1: systemd-networkd makes its end from the files, as its operator would.
    const files = Object.entries(ends.r1.networkd).map(([p, text]) => `mkdir -p ${shq(path.dirname(p))}; printf '%s' ${shq(text)} > ${shq(p)}`);
    ssh(key, R1, ["set -e", ...files, "systemctl restart systemd-modules-load.service systemd-sysctl.service", ...NETWORKD_ON, "sleep 3"].join("\n"));
    // r2: the ip lines, by hand.
    ssh(key, R2, ["set -e", ...ends.r2.commands].join("\n"));
    assert.match(ssh(key, R1, "ip -d link show ftok1"), /ipip .*remote 198\.51\.100\.171 local 198\.51\.100\.172[\s\S]*encap fou/);
    // What networkd made of the files, for a failure below.
    console.log(ssh(key, R1, "ip fou show; ip -d addr show dev ftok1; ip route show dev ftok1; ls /run/systemd/network /etc/systemd/network; journalctl -b --no-pager -u systemd-networkd | tail -n 30 || true"));
});

test("with the check on, up verifies both tunnels from k1, and each far end pings k1 back through its own", async () => {
    await stack.setConfig({ check: true });
    const r = await stack.pulumi(["up", "--yes", "--skip-preview"]);
    timings.upChecked = r.seconds;
    assert.equal(r.code, 0, explain(r));
    const out = await stack.outputs();
    assert.equal(out.verification.length, 2, JSON.stringify(out.verification));
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 1 && v.udpFromPeer >= 1, JSON.stringify(v));
    }
    const g = out.gwips as Record<string, Record<string, string>>;
    for (const [t, far, addr] of [["k1-r1", "r1", R1], ["k1-r2", "r2", R2]] as const) {
        const { ping, cap } = pingAndCapture(key, addr, g[t][far], K1, g[t].k1, 5555);
        assert.match(ping, /3 packets transmitted, 3 received/, `${far}: ${ping}`);
        assert.ok(cap.includes(`> ${K1}.5555: UDP`), cap);
    }
    // Each far end sends its routed prefix into its tunnel: networkd's route on r1, the ip line's on r2.
    assert.match(ssh(key, R1, "ip route show 10.50.0.0/24"), /10\.50\.0\.0\/24 .*dev ftok1/);
    assert.match(ssh(key, R2, "ip route show 10.60.0.0/24"), /10\.60\.0\.0\/24 via .* dev ftok1/);
});

test("destroy restores k1 byte for byte and leaves the far ends' tunnels, which are not the stack's", async () => {
    const r = await stack.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = r.seconds;
    assert.equal(snapshotDiff(baseline, hostSnapshot(key, K1)), "");
    assert.match(ssh(key, R1, "ip -o link show ftok1"), /ftok1/);
    assert.match(ssh(key, R2, "ip -o link show ftok1"), /ftok1/);
});
