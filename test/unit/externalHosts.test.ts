/**
 * A topology with a far end (`external:`) under mocks: the stack declares nothing on the far end
 * (no command reaches its address, no resource is named after its end), and the managed ends are
 * built as usual: port, link to the far end's address, GWIP, routes, a firewall admitting the far
 * end, a check pinging its GWIP and counting UDP to and from it.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { named, recorded, root, settle, tunnelHostsOf, valueOf } from "./mocks";
import { FouTopology } from "../../components/fouTopology";
import { AnyEndArgs, validateTunnel } from "../../components/fouTunnel";
import { planTopology } from "../../components/topologyPlan";
import { parseTopology } from "../../topology";

const TEXT = [
    "hosts:",
    "  - name: k1",
    "  - name: k2",
    "  - name: r1",
    "    external: {address: 203.0.113.9}",
    "tunnels:",
    "  - hosts: [k1, k2]",
    "  - hosts: [k1, r1]",
    "    routes: {k1: [10.40.0.0/16]}",
    "    persist: true",
    "  - hosts: [r1, k2]",
    "    encap: gue",
    "    port: 5556",
    "",
].join("\n");

const topology = parseTopology(TEXT, "far.yaml", { kind: "local", underlay: "198.51.100.1/24" });
const hosts = tunnelHostsOf(topology);
let fou: FouTopology;
let checks: { tunnel: string; host: string }[];

before(async () => {
    fou = new FouTopology("fou", { topology, hosts }, { parent: root });
    checks = await valueOf(fou.checks);
    await settle();
});

const commands = () => recorded.filter((r) => r.type === "command:remote:Command");

test("the stack has machines for k1 and k2 only", () => {
    assert.deepEqual(Object.keys(hosts), ["k1", "k2"]);
});

test("nothing is declared on the far end: no resource of its ends, no command to its address", () => {
    // An end is named <tunnel>-<host>; a host's own steps fou-<host>-prep, -firewall, -<encap>-<port>.
    const ofFarEnd = recorded.filter((r) => /^fou-(k1-r1|r1-k2)-r1(-|$)/.test(r.name) || /^fou-r1-(prep|firewall|fou-|gue-|kernel)/.test(r.name));
    assert.ok(recorded.some((r) => r.name === "fou-k1-r1-k1-link"));
    assert.deepEqual(ofFarEnd.map((r) => r.name), []);
    const cmds = commands();
    assert.ok(cmds.length > 20, `${cmds.length} commands`);
    for (const c of cmds) {
        // (a secret connection arrives wrapped: its value inside)
        const connection = c.inputs.connection?.value ?? c.inputs.connection;
        assert.ok(["198.51.100.151", "198.51.100.152"].includes(connection?.host), `${c.name} connects to ${JSON.stringify(connection)}`);
    }
});

test("each managed end is built as usual: its port, a link to the far end's address, its GWIP and routes", () => {
    assert.match(named("fou-k1-fou-5555-fou").inputs.create, /ip fou add port '5555' ipproto '4'/);
    assert.match(named("fou-k2-gue-5556-fou").inputs.create, /ip fou add port '5556' gue/);
    assert.match(named("fou-k1-r1-k1-link").inputs.create, /ip link add 'ftor1' type ipip remote '203\.0\.113\.9' local '198\.51\.100\.151' ttl '255' dev 'eth0' encap fou encap-sport auto encap-dport '5555'$/m);
    assert.match(named("fou-r1-k2-k2-link").inputs.create, /ip link add 'ftor1' type ipip remote '203\.0\.113\.9' local '198\.51\.100\.152' .* encap gue encap-sport auto encap-dport '5556'$/m);
    // k1-k2 took .1/.2: the far end's tunnels the next GWIPs, k1-r1 first.
    assert.match(named("fou-k1-r1-k1-addr").inputs.create, /ip addr replace '10\.10\.10\.3\/32' dev 'ftor1'/);
    assert.match(named("fou-k1-r1-k1-route").inputs.create, /ip route replace to '10\.10\.10\.4\/32' via '10\.10\.10\.3' dev 'ftor1'/);
    assert.match(named("fou-k1-r1-k1-10-40-0-0-16-route").inputs.create, /ip route replace to '10\.40\.0\.0\/16' via '10\.10\.10\.3' dev 'ftor1'/);
    // Routed prefixes: loose reverse paths on the link, forwarding on k1, as with any peer.
    assert.match(named("fou-k1-r1-k1-link").inputs.create, /rp_filter=2/);
    // The persisted tunnel gets its boot unit on k1 only.
    assert.ok(recorded.some((r) => r.name === "fou-k1-r1-k1-boot"));
});

test("the managed end waits for its own host's preparation only; a shared port for its managed hosts'", () => {
    assert.deepEqual(named("fou-k1-r1-k1-link").dependsOn.sort(), ["fou-k1-prep-kernel"]);
    assert.deepEqual(named("fou-k2-gue-5556-fou").dependsOn.sort(), ["fou-k2-prep-kernel"]);
    assert.deepEqual(named("fou-k1-fou-5555-fou").dependsOn.sort(), ["fou-k1-prep-kernel", "fou-k2-prep-kernel"]);
});

test("each managed host's firewall admits the far end on the port of its tunnel to it", () => {
    assert.match(named("fou-k1-firewall-nft").inputs.create, /udp dport 5555 ip saddr \{ 198\.51\.100\.152, 203\.0\.113\.9 \} accept/);
    assert.match(named("fou-k2-firewall-nft").inputs.create, /udp dport 5556 ip saddr \{ 203\.0\.113\.9 \} accept/);
});

test("the managed end's check pings the far end's GWIP and counts UDP to and from the far end's port", () => {
    const check = named("fou-k1-r1-k1-check").inputs.create as string;
    // The guide's ping and tcpdump (components/sh/tunnel-check.sh), towards the far end.
    assert.match(check, /^fou_dev='eth0'; fou_gwip='10\.10\.10\.3'; fou_peer='10\.10\.10\.4'; fou_local='198\.51\.100\.151'; fou_remote='203\.0\.113\.9'; fou_port='5555'$/m);
    assert.match(check, /ping -n -q -c 3 -i 0\.2 -w 5 -I "\$fou_gwip" "\$fou_peer"/);
    assert.deepEqual(
        checks.map((c) => [c.tunnel, c.host]),
        [
            ["k1-k2", "k1"],
            ["k1-k2", "k2"],
            ["k1-r1", "k1"],
            ["r1-k2", "k2"],
        ],
    );
    assert.deepEqual(Object.keys(fou.info).map((t) => [t, fou.info[t].ends.map((e) => e.host)]), [
        ["k1-k2", ["k1", "k2"]],
        ["k1-r1", ["k1"]],
        ["r1-k2", ["k2"]],
    ]);
});

test("the plan: no steps for the far end; its peers know it is one; it is a firewall peer", () => {
    const plan = planTopology(topology);
    assert.deepEqual(plan.hosts.map((h) => h.host), ["k1", "k2"]);
    const k1 = plan.hosts[0];
    assert.deepEqual(k1.ends, [
        { tunnel: "k1-k2", end: 0, peer: "k2", peerExternal: false },
        { tunnel: "k1-r1", end: 0, peer: "r1", peerExternal: true },
    ]);
    assert.equal(k1.ipForward, true);
    assert.deepEqual(k1.firewall?.ports, [{ port: 5555, peers: ["k2", "r1"] }]);
    assert.deepEqual(k1.ports.map((p) => [p.port, p.preparedFirst]), [[5555, ["k1", "k2"]]]);
    assert.deepEqual(plan.hosts[1].ports.map((p) => [p.port, p.preparedFirst]), [
        [5555, ["k1", "k2"]],
        [5556, ["k2"]],
    ]);
});

test("FouTunnel: two far ends are refused, and a far end is held to the checks of an end", () => {
    const far = (name: string, gwip: string) => ({ far: { name, underlayAddress: "203.0.113.9" }, gwip });
    const problems = (a: AnyEndArgs, b: AnyEndArgs) => validateTunnel("t", { a, b, port: 5555 }, 255).filter((p): p is string => p !== undefined);
    assert.deepEqual(problems(far("r1", "10.10.10.1"), far("r2", "10.10.10.2")), [
        "FouTunnel t: both ends are far ends (r1, r2); the tunnel needs an end on a host the stack manages",
    ]);
    const k1 = { host: hosts.k1, gwip: "10.10.10.1" };
    assert.deepEqual(problems(k1, far("r1", "10.10.10.2")), []);
    assert.deepEqual(problems(k1, far("R1", "fd00::2")), [
        'FouTunnel t: b.far.name must be 1-12 characters of a-z, 0-9 and \'-\', starting with a letter (got "R1")',
        'FouTunnel t: b.gwip must be an IPv4 address like 10.10.10.1 (got "fd00::2")',
    ]);
    assert.deepEqual(problems(k1, far("k1", "10.10.10.2")), ['FouTunnel t: both ends are host "k1"; a tunnel joins two different hosts']);
});
