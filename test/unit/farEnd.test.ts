/**
 * What a far end's operator is told to run (components/farEnd.ts): the guide's commands mirrored
 * for its side, run here under each host shell with a fake `ip`, `modprobe` and `sysctl` that
 * print their arguments, linted by shellcheck; and the systemd-networkd files saying the same.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { HOST_SHELLS, runIn } from "./hostShells";
import { FarEndSetup, farEndSetups } from "../../components/farEnd";
import { Topology, parseTopology } from "../../topology";

const dir = mkdtempSync(path.join(tmpdir(), "fou-farend-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function setups(text: string): Record<string, FarEndSetup> {
    const t: Topology = parseTopology(text, "t.yaml", { kind: "local", underlay: "198.51.100.1/24" });
    return farEndSetups(t, Object.fromEntries(t.hosts.map((h) => [h.name, h.address])));
}

/** The guide's tunnel with k2 replaced by a far end at .77. */
const GUIDE_LIKE = ["hosts:", "  - name: k1", "  - name: r1", "    external: {address: 198.51.100.77}", "tunnels:", "  - hosts: [k1, r1]", ""].join("\n");

/** A far end with two tunnels: routed ipip over FOU, and sit over GUE with a fixed sport and an MTU. */
const TWO = [
    "hosts:",
    "  - name: k1",
    "  - name: k2",
    "  - name: r1",
    "    external: {address: 203.0.113.9}",
    "tunnels:",
    "  - hosts: [k1, r1]",
    "    routes: {r1: [10.20.1.0/24], k1: [10.30.0.0/16]}",
    "  - hosts: [r1, k2]",
    "    protocol: sit",
    "    encap: gue",
    "    port: 5556",
    "    sport: 6000",
    "    mtu: 1400",
    "    ttl: 64",
    "",
].join("\n");

/**
 * Runs COMMANDS under SHELL with `ip`, `modprobe` and `sysctl` as shell functions (a busybox sh
 * runs its own applets before PATH) that print `tool [arg] [arg] …`, a line per call.
 */
function runFaked(shell: (typeof HOST_SHELLS)[number], commands: string[]): string[] {
    const fakes = [
        `rec() { t=$1; shift; printf '%s' "$t"; for a in "$@"; do printf ' [%s]' "$a"; done; echo; }`,
        ...["ip", "modprobe", "sysctl"].map((tool) => `${tool}() { rec ${tool} "$@"; }`),
    ];
    // Only builtins and the fakes: a command that is none of them fails the run.
    const r = runIn(shell, ["PATH=/nonexistent", ...fakes, "set -e", ...commands].join("\n"));
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trimEnd().split("\n");
}

test("the guide's tunnel to a far end: its commands are the guide's, mirrored, the link bound to no device", () => {
    const { r1 } = setups(GUIDE_LIKE);
    assert.equal(r1.address, "198.51.100.77");
    assert.deepEqual(r1.tunnels, ["k1-r1"]);
    assert.deepEqual(r1.commands, [
        "modprobe 'fou'",
        "modprobe 'ipip'",
        "ip fou add port '5555' ipproto '4'",
        "ip link add 'ftok1' type ipip remote '198.51.100.151' local '198.51.100.77' ttl '255' encap fou encap-sport auto encap-dport '5555'",
        "ip link set dev 'ftok1' up",
        "ip addr add '10.10.10.2/32' dev 'ftok1'",
        "ip route add to '10.10.10.1/32' via '10.10.10.2' dev 'ftok1'",
    ]);
});

for (const shell of HOST_SHELLS) {
    test(`the commands run under ${shell.name} as the words the guide types`, () => {
        assert.deepEqual(runFaked(shell, setups(GUIDE_LIKE).r1.commands), [
            "modprobe [fou]",
            "modprobe [ipip]",
            "ip [fou] [add] [port] [5555] [ipproto] [4]",
            "ip [link] [add] [ftok1] [type] [ipip] [remote] [198.51.100.151] [local] [198.51.100.77] [ttl] [255] [encap] [fou] [encap-sport] [auto] [encap-dport] [5555]",
            "ip [link] [set] [dev] [ftok1] [up]",
            "ip [addr] [add] [10.10.10.2/32] [dev] [ftok1]",
            "ip [route] [add] [to] [10.10.10.1/32] [via] [10.10.10.2] [dev] [ftok1]",
        ]);
    });
}

test("two tunnels: forwarding and loose reverse paths for the routed one, each port once, sit routes without via", () => {
    const { r1 } = setups(TWO);
    assert.deepEqual(runFaked(HOST_SHELLS[0], r1.commands), [
        "modprobe [fou]",
        "modprobe [ipip]",
        "modprobe [sit]",
        "sysctl [-w] [net.ipv4.ip_forward=1]",
        "ip [fou] [add] [port] [5555] [ipproto] [4]",
        "ip [fou] [add] [port] [5556] [gue]",
        "ip [link] [add] [ftok1] [type] [ipip] [remote] [198.51.100.151] [local] [203.0.113.9] [ttl] [255] [encap] [fou] [encap-sport] [auto] [encap-dport] [5555]",
        "ip [link] [set] [dev] [ftok1] [up]",
        "sysctl [-w] [net/ipv4/conf/ftok1/rp_filter=2]",
        "ip [addr] [add] [10.10.10.2/32] [dev] [ftok1]",
        "ip [route] [add] [to] [10.10.10.1/32] [via] [10.10.10.2] [dev] [ftok1]",
        "ip [route] [add] [to] [10.20.1.0/24] [via] [10.10.10.2] [dev] [ftok1]",
        "ip [link] [add] [ftok2] [type] [sit] [remote] [198.51.100.152] [local] [203.0.113.9] [ttl] [64] [encap] [gue] [encap-sport] [6000] [encap-dport] [5556]",
        "ip [link] [set] [dev] [ftok2] [mtu] [1400] [up]",
        "ip [addr] [add] [fd00:10:10:10::1/128] [dev] [ftok2]",
        "ip [route] [add] [to] [fd00:10:10:10::2/128] [dev] [ftok2]",
    ]);
});

test("undo: each link, newest first (its GWIP and routes go with it), then each port; modules and sysctls stay", () => {
    const { r1 } = setups(TWO);
    assert.deepEqual(runFaked(HOST_SHELLS[0], r1.undo), ["ip [link] [del] [dev] [ftok2]", "ip [link] [del] [dev] [ftok1]", "ip [fou] [del] [port] [5555]", "ip [fou] [del] [port] [5556]"]);
});

test("two far ends' commands and undo pass shellcheck -s sh", () => {
    const scripts = [setups(GUIDE_LIKE).r1, setups(TWO).r1].flatMap((s, i) =>
        [s.commands, s.undo].map((lines, j) => {
            const file = path.join(dir, `far-${i}-${j}.sh`);
            writeFileSync(file, ["#!/bin/sh", "set -e", ...lines, ""].join("\n"));
            return file;
        }),
    );
    const r = spawnSync("shellcheck", ["-s", "sh", "-f", "gcc", ...scripts], { encoding: "utf8" });
    assert.equal(r.error, undefined, "shellcheck is installed (scripts/test.sh installs it)");
    assert.equal(r.stdout + r.stderr, "", `shellcheck found:\n${r.stdout}${r.stderr}`);
});

test("the guide's tunnel as systemd-networkd files: the port, the tunnel netdev, its network, the modules", () => {
    const { r1 } = setups(GUIDE_LIKE);
    assert.deepEqual(r1.networkd, {
        "/etc/modules-load.d/fou-tunnel.conf": "# fou-tunnel: the modules of tunnels k1-r1\nfou\nipip\n",
        "/etc/systemd/network/60-fou-tunnel-fou5555.netdev": [
            "# fou-tunnel: the receive port of tunnels k1-r1",
            "",
            "[NetDev]",
            "Name=fou5555",
            "Kind=fou",
            "",
            "[FooOverUDP]",
            "Encapsulation=FooOverUDP",
            "Port=5555",
            "Protocol=4",
            "",
        ].join("\n"),
        "/etc/systemd/network/60-fou-tunnel-ftok1.netdev": [
            "# fou-tunnel: tunnel k1-r1, ftok1 to k1 (198.51.100.151)",
            "",
            "[NetDev]",
            "Name=ftok1",
            "Kind=ipip",
            "",
            "[Tunnel]",
            "Independent=yes",
            "Local=198.51.100.77",
            "Remote=198.51.100.151",
            "TTL=255",
            "FooOverUDP=yes",
            "Encapsulation=FooOverUDP",
            "FOUDestinationPort=5555",
            "",
        ].join("\n"),
        "/etc/systemd/network/60-fou-tunnel-ftok1.network": [
            "# fou-tunnel: tunnel k1-r1, ftok1 to k1 (198.51.100.151)",
            "",
            "[Match]",
            "Name=ftok1",
            "",
            "[Network]",
            "Address=10.10.10.2/32",
            "LinkLocalAddressing=no",
            "IPv6AcceptRA=no",
            "",
            "[Route]",
            "Destination=10.10.10.1/32",
            "",
        ].join("\n"),
    });
});

/** `Key=value` lines of a section of an INI-style systemd file. */
function section(file: string, name: string): string[] {
    const parts = file.split(/\n(?=\[)/);
    const part = parts.find((p) => p.startsWith(`[${name}]\n`));
    assert.ok(part, `no [${name}] in:\n${file}`);
    return part.trim().split("\n").slice(1);
}

test("networkd files of GUE, sit, a fixed sport, an MTU, a TTL and routes, and the sysctls of a routed tunnel", () => {
    const files = setups(TWO).r1.networkd;
    const dirOf = "/etc/systemd/network/60-fou-tunnel-";
    assert.deepEqual(Object.keys(files).sort(), [
        "/etc/modules-load.d/fou-tunnel.conf",
        "/etc/sysctl.d/60-fou-tunnel.conf",
        `${dirOf}fou5555.netdev`,
        `${dirOf}ftok1.netdev`,
        `${dirOf}ftok1.network`,
        `${dirOf}ftok2.netdev`,
        `${dirOf}ftok2.network`,
        `${dirOf}gue5556.netdev`,
    ]);
    assert.deepEqual(section(files[`${dirOf}gue5556.netdev`], "FooOverUDP"), ["Encapsulation=GenericUDPEncapsulation", "Port=5556"]);
    assert.deepEqual(section(files[`${dirOf}ftok2.netdev`], "NetDev"), ["Name=ftok2", "Kind=sit", "MTUBytes=1400"]);
    assert.deepEqual(section(files[`${dirOf}ftok2.netdev`], "Tunnel"), [
        "Independent=yes",
        "Local=203.0.113.9",
        "Remote=198.51.100.152",
        "TTL=64",
        "FooOverUDP=yes",
        "Encapsulation=GenericUDPEncapsulation",
        "FOUDestinationPort=5556",
        "FOUSourcePort=6000",
    ]);
    assert.deepEqual(section(files[`${dirOf}ftok2.network`], "Network"), ["Address=fd00:10:10:10::1/128", "LinkLocalAddressing=no", "IPv6AcceptRA=no"]);
    assert.match(files[`${dirOf}ftok1.network`], /\[Route\]\nDestination=10\.10\.10\.1\/32\n\n\[Route\]\nDestination=10\.20\.1\.0\/24\n$/);
    assert.equal(files["/etc/modules-load.d/fou-tunnel.conf"].split("\n").slice(1).join(" ").trim(), "fou ipip sit");
    assert.deepEqual(files["/etc/sysctl.d/60-fou-tunnel.conf"].split("\n").slice(1, -1), ["net.ipv4.ip_forward = 1", "net/ipv4/conf/ftok1/rp_filter = 2"]);
});

test("a topology without far ends has none; a managed peer without an address is a programming error", () => {
    const t = parseTopology("hosts: [{name: k1}, {name: k2}]\ntunnels: [{hosts: [k1, k2]}]\n", "t.yaml", { kind: "local" });
    assert.deepEqual(farEndSetups(t, {}), {});
    const far = parseTopology(GUIDE_LIKE, "t.yaml", { kind: "local" });
    assert.throws(() => farEndSetups(far, {}), /no underlay address for k1, the peer of r1 in tunnel k1-r1/);
});
