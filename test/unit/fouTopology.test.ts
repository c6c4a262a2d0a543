/**
 * FouTopology's structure under mocks, for the three-host mesh of topologies/mesh3.yaml: one
 * HostPrep per host with the modules its tunnels need, one receive port per host and binding
 * shared by the tunnels that use it, each tunnel wired to those ports, persistence units.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { before, test } from "node:test";
import { named, recorded, root, settle, tunnelHostsOf, valueOf } from "./mocks";
import { FouTopology } from "../../components/fouTopology";
import { FouInputError } from "../../lib/validate";
import { loadTopology } from "../../topology";

const REPO = path.resolve(__dirname, "..", "..");
const topology = loadTopology(path.join(REPO, "topologies", "mesh3.yaml"), { kind: "local", underlay: "198.51.100.1/24" });
const hosts = tunnelHostsOf(topology);

let mesh: FouTopology;
before(async () => {
    mesh = new FouTopology("fou", { topology, hosts }, { parent: root });
    await valueOf(mesh.checks);
    await settle();
});

const commands = () => recorded.filter((r) => r.type === "command:remote:Command");

test("each host is prepared once, loading the modules of its tunnels' protocols", () => {
    assert.match(named("fou-k1-prep-kernel").inputs.create, /^fou_modules='fou ipip'; /m);
    assert.match(named("fou-k2-prep-kernel").inputs.create, /^fou_modules='fou ipip sit'; /m);
    assert.match(named("fou-k3-prep-kernel").inputs.create, /^fou_modules='fou ipip sit'; /m);
    assert.equal(recorded.filter((r) => r.name.startsWith("fou-") && r.name.endsWith("-prep-kernel")).length, 3);
});

test("one `ip fou add` per host and binding: k3's GUE port is shared by k1-k3 and k2-k3", () => {
    // (boot units replay the same line: count the port commands themselves)
    const ports = commands().filter((c) => c.name.endsWith("-fou"));
    const adds = ports
        .map((c) => /ip fou add port '(\d+)' (gue|ipproto '\d+')/.exec(c.inputs.create))
        .filter((m): m is RegExpExecArray => m !== null);
    assert.equal(adds.length, 5, adds.map((m) => m[0]).join("; "));
    const k3 = ports.filter((c) => c.name.startsWith("fou-k3-"));
    assert.deepEqual(k3.map((c) => c.name), ["fou-k3-gue-5556-fou"]);
    // Ports are the topology's, not a tunnel's: destroying one tunnel cannot take them along.
    assert.equal(named("fou-k3-gue-5556").parent, "fou");
    // Both tunnels' checks on k3 wait for the one port (so Pulumi will not delete it under them).
    assert.ok(named("fou-k1-k3-k3-check").dependsOn.includes("fou-k3-gue-5556-fou"));
    assert.ok(named("fou-k2-k3-k3-check").dependsOn.includes("fou-k3-gue-5556-fou"));
    // No tunnel made a port of its own.
    assert.ok(!recorded.some((r) => /^fou-k\d-k\d-k\d-fou$/.test(r.name)));
});

test("ports and links wait for every host of their tunnels to be prepared", () => {
    assert.deepEqual(named("fou-k3-gue-5556-fou").dependsOn.sort(), ["fou-k1-prep-kernel", "fou-k2-prep-kernel", "fou-k3-prep-kernel"]);
    assert.deepEqual(named("fou-k1-k2-k1-link").dependsOn.sort(), ["fou-k1-prep-kernel", "fou-k2-prep-kernel"]);
});

test("tunnel options reach the links: GUE, fixed sport, checksums, sit", () => {
    assert.match(named("fou-k1-k3-k1-link").inputs.create, /type ipip .* encap gue encap-sport '5600' encap-dport '5556' encap-csum$/m);
    assert.match(named("fou-k2-k3-k2-link").inputs.create, /type sit .* encap gue encap-sport auto encap-dport '5556'$/m);
    assert.match(named("fou-k1-k2-k1-link").inputs.create, /type ipip .* encap fou encap-sport auto encap-dport '5555'$/m);
});

test("the extra prefix is routed on k1 through k1-k2 only", () => {
    const routes = commands().filter((c) => /ip route replace to '10\.20\.2\.0\/24'/.test(c.inputs.create));
    assert.deepEqual(routes.map((r) => r.name), ["fou-k1-k2-k1-10-20-2-0-24-route"]);
    assert.match(routes[0].inputs.create, /via '10\.10\.10\.1' dev 'ftok2'/);
});

test("persistence: a boot unit per tunnel end, per port, and per host's firewall rules", () => {
    const units = commands().filter((c) => /systemctl enable/.test(c.inputs.create)).map((c) => c.name).sort();
    assert.deepEqual(units, [
        "fou-k1-firewall-rules-boot",
        "fou-k1-fou-5555-port-boot",
        "fou-k1-gue-5556-port-boot",
        "fou-k1-k2-k1-boot",
        "fou-k1-k2-k2-boot",
        "fou-k1-k3-k1-boot",
        "fou-k1-k3-k3-boot",
        "fou-k2-firewall-rules-boot",
        "fou-k2-fou-5555-port-boot",
        "fou-k2-gue-5556-port-boot",
        "fou-k2-k3-k2-boot",
        "fou-k2-k3-k3-boot",
        "fou-k3-firewall-rules-boot",
        "fou-k3-gue-5556-port-boot",
    ]);
});

test("outputs: every end of every tunnel checked", async () => {
    const checks = await valueOf(mesh.checks);
    assert.deepEqual(checks.map((c) => `${c.tunnel}/${c.host}`), ["k1-k2/k1", "k1-k2/k2", "k1-k3/k1", "k1-k3/k3", "k2-k3/k2", "k2-k3/k3"]);
    assert.deepEqual(Object.keys(mesh.info), ["k1-k2", "k1-k3", "k2-k3"]);
});

test("a topology host without a machine is an error before anything is declared", async () => {
    const before = recorded.length;
    const { k3: _, ...two } = hosts;
    assert.throws(
        () => new FouTopology("bad", { topology, hosts: two }, { parent: root }),
        (e: unknown) => e instanceof FouInputError && /FouTopology bad: no machine for host k3 of .*mesh3\.yaml/.test(e.message),
    );
    await settle();
    assert.equal(recorded.length, before);
});

test("forwarding only on the hosts of tunnels that carry routed prefixes (k1-k2 routes 10.20.2.0/24)", () => {
    assert.ok(recorded.some((r) => r.name === "fou-k1-prep-ip-forward"));
    assert.ok(recorded.some((r) => r.name === "fou-k2-prep-ip-forward"));
    assert.ok(!recorded.some((r) => r.name === "fou-k3-prep-ip-forward"), "k3's tunnels route only GWIPs");
});

test("each host's receive ports are open to its tunnels' peers only, and the checks wait for the rules", async () => {
    const fw = named("fou-k3-firewall-nft");
    // k3 receives on its shared GUE port 5556 from both k1 and k2.
    assert.match(fw.inputs.create, /udp dport 5556 ip saddr \{ 198\.51\.100\.151, 198\.51\.100\.152 \} accept/);
    assert.match(fw.inputs.create, /udp dport 5556 counter drop/);
    const k1 = named("fou-k1-firewall-nft").inputs.create as string;
    assert.match(k1, /udp dport 5555 ip saddr \{ 198\.51\.100\.152 \} accept/);
    assert.match(k1, /udp dport 5556 ip saddr \{ 198\.51\.100\.153 \} accept/);
    assert.ok(named("fou-k1-k3-k3-check").dependsOn.includes("fou-k3-firewall-nft"));
    assert.ok(named("fou-k1-k3-k3-check").dependsOn.includes("fou-k1-firewall-nft"));
    // The rules wait for the host's kernel check: a host refused there is left as it was.
    assert.ok(named("fou-k3-firewall-nft").dependsOn.includes("fou-k3-prep-kernel"), JSON.stringify(named("fou-k3-firewall-nft").dependsOn));
});

test("firewall: false declares no rules", async () => {
    const before = recorded.length;
    new FouTopology("nofw", { topology: { ...topology, firewall: false }, hosts }, { parent: root });
    await settle();
    assert.ok(!recorded.slice(before).some((r) => r.name.includes("firewall")));
});

test("loose rp_filter on the links of a tunnel that carries routed prefixes, not on GWIP-only ones", () => {
    for (const h of ["k1", "k2"]) {
        assert.match(named(`fou-k1-k2-${h}-link`).inputs.create, /sysctl -q -w 'net\/ipv4\/conf\/fto(k1|k2)\/rp_filter=2'/);
    }
    assert.doesNotMatch(named("fou-k1-k3-k1-link").inputs.create, /rp_filter/);
});
