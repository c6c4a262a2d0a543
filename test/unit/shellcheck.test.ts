/**
 * Every program a step sends to a host passes shellcheck as POSIX sh: the programs of whole
 * topologies under mocks (the guide; every protocol, encap and option with routes, persistence,
 * the firewall; sudo logins; tunnels to a far end; all of it over an IPv6 underlay), of a kernel upgrade from a repository and
 * key, and of a spec whose values are valid but shell-hostile (quotes, `$(…)`, backticks, spaces
 * where a value may hold them); and the host library's source files.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { recorded, root, settle, tunnelHostsOf, valueOf } from "./mocks";
import { BootUnit } from "../../components/bootUnit";
import { FouTopology } from "../../components/fouTopology";
import { TunnelHost } from "../../components/host";
import { HOST_LIBRARY_DIR, hostLibrary, HostLibraryFile } from "../../components/hostLibrary";
import { KernelUpgrade } from "../../components/kernelUpgrade";
import { KEY } from "./kernelFixtures";
import { K1_KEY as HOST_KEY } from "./sshFixtures";
import { parseTopology } from "../../topology";

const dir = mkdtempSync(path.join(tmpdir(), "fou-shellcheck-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const GUIDE = ["hosts: [{name: k1}, {name: k2}]", "tunnels: [{hosts: [k1, k2]}]"].join("\n");
const EVERYTHING = [
    "hosts: [{name: a1}, {name: a2}, {name: a3}]",
    "tunnels:",
    "  - {hosts: [a1, a2], persist: true, routes: {a2: [10.20.2.0/24]}, mtu: 1400, sport: 5600, csum: true}",
    "  - {hosts: [a1, a3], protocol: sit, encap: gue, port: 5556, persist: true}",
    "  - {hosts: [a2, a3], protocol: gre, port: 5557, ttl: 64}",
].join("\n");
/** Tunnels to a far end the stack does not manage: only the managed ends' programs. */
const FAR_END = [
    "hosts: [{name: b1}, {name: b2}, {name: r1, external: {address: 203.0.113.9}}]",
    "tunnels:",
    "  - {hosts: [b1, r1], persist: true, routes: {b1: [10.40.0.0/16]}}",
    "  - {hosts: [r1, b2], protocol: sit, encap: gue, port: 5556}",
].join("\n");

/** Over an IPv6 underlay: ip6tnl (ipip6, ip6ip6) and ip6gre links, `-6` ports, every option. */
const IPV6 = [
    "hosts:",
    ...[1, 2, 3].map((i) => `  - {name: c${i}, ssh: {address: 198.51.100.${180 + i}, hostKey: ${HOST_KEY}}, underlayAddress: "2001:db8:5155::${180 + i}"}`),
    "tunnels:",
    "  - {hosts: [c1, c2], persist: true, routes: {c2: [10.20.2.0/24]}, mtu: 1400, sport: 5600, csum: false}",
    "  - {hosts: [c1, c3], protocol: sit, encap: gue, port: 5556, persist: true}",
    "  - {hosts: [c2, c3], protocol: gre, port: 5557, ttl: 64}",
].join("\n");

function declare(name: string, text: string, sudo: boolean, kind: "local" | "ssh" = "local"): FouTopology {
    const topology = parseTopology(text, `${name}.yaml`, kind === "local" ? { kind, underlay: "198.51.100.1/24" } : { kind });
    const hosts = tunnelHostsOf(topology, (_, t) => (sudo ? { ...t, sudo: true } : t));
    return new FouTopology(name, { topology, hosts }, { parent: root });
}

before(async () => {
    const tops = [declare("guide", GUIDE, false), declare("all", EVERYTHING, true), declare("far", FAR_END, false), declare("v6", IPV6, true, "ssh")];
    // Values a caller may pass that the shell must take as data.
    const host: TunnelHost = { name: "h9", underlayAddress: "198.51.100.9", device: "eth0", connection: { host: "198.51.100.9" } };
    new BootUnit("hostile", { host, unit: "odd-1", description: `it's "$(id)" \`x\` a b`, script: "echo 'a b' \"$(id)\"" }, { parent: root });
    // A kernel upgrade from a repository with its key: the options reach its shell as variables.
    new KernelUpgrade("hostile-kernel", { host, modules: ["fou", "ipip", "sit"], package: "linux-image-6.12-amd64", repository: "deb [arch=amd64] http://198.51.100.1:8080/it's bookworm-fou main", key: KEY }, { parent: root });
    await Promise.all(tops.map((t) => valueOf(t.checks)));
    await settle();
});

test("every step's program on stdin passes shellcheck -s sh", () => {
    const steps = recorded.filter((r) => r.type === "command:remote:Command" && typeof r.inputs.createLine === "string");
    assert.ok(steps.length > 40, `${steps.length} steps`);
    const files = steps.map((s, i) => {
        const file = path.join(dir, `${i}-${s.name}.sh`);
        writeFileSync(file, `#!/bin/sh\n${s.inputs.stdin}`);
        return file;
    });
    // SC2016 and SC1003 flag single quotes around `$`, backticks and backslashes: exactly how
    // shq keeps a value data (`'$(id)'`, `'it'\''s'`).
    const r = spawnSync("shellcheck", ["-s", "sh", "-f", "gcc", "-e", "SC2016,SC1003", ...files], { encoding: "utf8" });
    assert.equal(r.error, undefined, "shellcheck is installed (scripts/test.sh installs it)");
    assert.equal(r.stdout + r.stderr, "", `shellcheck found:\n${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0);
});

test("the host library's source files (components/sh/) pass shellcheck as written, and hosts get them without comments (shellcheck's directives aside)", () => {
    const files = readdirSync(HOST_LIBRARY_DIR).filter((f) => f.endsWith(".sh"));
    assert.deepEqual(files.sort(), ["aws-poll.sh", "ip-forward.sh", "kernel-fou.sh", "kernel-prep.sh", "kernel-upgrade.sh", "kernel-verify.sh", "object.sh", "reach.sh", "tunnel-check.sh", "undo.sh"]);
    const r = spawnSync("shellcheck", ["-f", "gcc", ...files.map((f) => path.join(HOST_LIBRARY_DIR, f))], { encoding: "utf8" });
    assert.equal(r.stdout + r.stderr, "", `shellcheck found:\n${r.stdout}${r.stderr}`);
    for (const f of files as HostLibraryFile[]) {
        const text = hostLibrary(f);
        assert.doesNotMatch(text, /^\s*#(?! shellcheck disable=)/m, f);
        assert.doesNotMatch(text, /^\s*$/m, f);
        // Every line a host gets is a line of the source, whole.
        const source = new Set(readFileSync(path.join(HOST_LIBRARY_DIR, f), "utf8").split("\n"));
        for (const line of text.split("\n")) assert.ok(source.has(line), `${f}: ${line}`);
    }
});
