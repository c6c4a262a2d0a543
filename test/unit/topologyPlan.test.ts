/**
 * planTopology as a function: its rules hold for random valid topologies (fast-check), and it
 * gives the plans the example topologies are written for.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { HostPlan, planTopology, TopologyPlan } from "../../components/topologyPlan";
import type { HostSpec, TopologySpec, TunnelSpec } from "../../components/topologySpec";
import { ENCAPS, MODULES, PROTOCOLS, portIpproto } from "../../lib/vocabulary";
import { loadTopology } from "../../topology";
import { TUNNEL_DEFAULTS } from "../../topology/defaults";
import { tunnelSpec } from "../../topology/model";
import { PortTable, portsOf } from "../../topology/ports";

const REPO = path.resolve(__dirname, "..", "..");
/** Each property's number of random topologies. */
const RUNS = 500;

// ---------------------------------------------------------------------------------------------
// Random valid topologies

/** Few port numbers and hosts, so that tunnels often share a port and a host has several. */
const PORTS = [5555, 5556, 6000];
const NAMES = ["k1", "k2", "k3", "k4", "k5", "k6"];
/** Records with Object's prototype, as parsed YAML and JSON have. */
const PLAIN = { noNullPrototype: true };
/** How many prefixes an end routes: mostly none, so that some hosts do not forward. */
const ROUTES = fc.constantFrom(0, 0, 0, 1, 2);

/** A host as drafted: maybe a kernel block, maybe a far end the stack does not manage (which has none). */
type HostDraft = Omit<HostSpec, "name"> & { readonly external?: true };

const hostArb: fc.Arbitrary<HostDraft> = fc.oneof(
    fc.constant({}),
    fc.record({ kernel: fc.record({ upgrade: fc.boolean(), rebootTimeout: fc.integer({ min: 60, max: 3600 }) }, PLAIN) }, PLAIN),
    fc.constant({ external: true as const }),
);

const tunnelArb = (hosts: number) =>
    fc.record({
        a: fc.nat(hosts - 1),
        // The other end: any host but a.
        bOffset: fc.integer({ min: 1, max: hosts - 1 }),
        protocol: fc.constantFrom(...PROTOCOLS),
        encap: fc.constantFrom(...ENCAPS),
        port: fc.constantFrom(...PORTS),
        persist: fc.boolean(),
        routes: fc.tuple(ROUTES, ROUTES),
    }, PLAIN);

/**
 * A topology as topology/ would make one: distinct hosts, some of them far ends (externalHosts),
 * tunnels between two of them, at most one tunnel per host pair and protocol, no port number
 * needed with two bindings on a host, no tunnel between two far ends (a tunnel that would break
 * a rule is left out), the ports those of the tunnels on managed hosts.
 */
const topologyArb: fc.Arbitrary<TopologySpec> = fc.integer({ min: 2, max: NAMES.length }).chain((n) =>
    fc
        .record({
            hosts: fc.array(hostArb, { minLength: n, maxLength: n }),
            tunnels: fc.array(tunnelArb(n), { maxLength: 10 }),
            firewall: fc.constantFrom(true, false, undefined),
        }, PLAIN)
        .map(({ hosts, tunnels, firewall }) => build(hosts, tunnels, firewall)),
);

function build(hosts: HostDraft[], drafts: { a: number; bOffset: number; protocol: TunnelSpec["protocol"]; encap: TunnelSpec["encap"]; port: number; persist: boolean; routes: [number, number] }[], firewall: boolean | undefined): TopologySpec {
    const all = hosts.map((h, i) => ({ name: NAMES[i], ...h }));
    const specs: HostSpec[] = all.filter((h) => !h.external).map(({ external: _, ...h }) => h);
    const far = all.filter((h) => h.external).map((h, i) => ({ name: h.name, address: `203.0.113.${i + 1}` }));
    const table = new PortTable<string>();
    const pairs = new Set<string>();
    const tunnels: TunnelSpec[] = [];
    drafts.forEach((d, i) => {
        const ends = [all[d.a].name, all[(d.a + d.bOffset) % all.length].name] as const;
        const pair = `${[...ends].sort().join("-")}/${d.protocol}`;
        if (ends.every((h) => far.some((f) => f.name === h))) {
            return;
        }
        const ipproto = portIpproto(d.encap, d.protocol);
        const clash = ends.some((h) => {
            const p = table.get(h, d.port);
            return p !== undefined && (p.encap !== d.encap || p.ipproto !== ipproto);
        });
        if (pairs.has(pair) || clash) {
            return;
        }
        pairs.add(pair);
        ends.forEach((h) => table.use(h, d.port, d.encap, d.protocol, d.persist, `t${i}`));
        const end = (j: 0 | 1) => ({
            host: ends[j],
            gwip: `10.10.${i}.${j + 1}`,
            ifname: `t${i}e${j}`,
            routes: Array.from({ length: d.routes[j] }, (_, r) => `10.${20 + j}.${i * 4 + r}.0/24`),
        });
        tunnels.push(tunnelSpec(`t${i}`, { ...TUNNEL_DEFAULTS, protocol: d.protocol, encap: d.encap, port: d.port, persist: d.persist }, [end(0), end(1)]));
    });
    return {
        source: "random",
        hosts: specs,
        ...(far.length > 0 ? { externalHosts: far } : {}),
        tunnels,
        ports: portsOf(all.map((h) => h.name), tunnels).filter((p) => specs.some((h) => h.name === p.host)),
        ...(firewall === undefined ? {} : { firewall }),
    };
}

/** Asserts `predicate` (which asserts itself) for RUNS random topologies. */
function holds(predicate: (spec: TopologySpec, plan: TopologyPlan) => void): void {
    fc.assert(
        fc.property(topologyArb, (spec) => predicate(spec, planTopology(spec))),
        { numRuns: RUNS },
    );
}

const tunnelsOf = (spec: TopologySpec, host: string) => spec.tunnels.filter((t) => t.ends.some((e) => e.host === host));
const isFar = (spec: TopologySpec, host: string) => (spec.externalHosts ?? []).some((h) => h.name === host);
const planOf = (plan: TopologyPlan, host: string): HostPlan => {
    const found = plan.hosts.find((h) => h.host === host);
    assert.ok(found, `no plan for ${host}`);
    return found;
};
const sorted = <T>(xs: readonly T[]) => [...xs].sort();

// ---------------------------------------------------------------------------------------------
// Properties

test("every host with a tunnel end has a plan, in topology order, and no other host has one", () => {
    holds((spec, plan) => {
        const ended = spec.hosts.map((h) => h.name).filter((n) => tunnelsOf(spec, n).length > 0);
        assert.deepEqual(plan.hosts.map((h) => h.host), ended);
    });
});

test("a host loads exactly the modules of its tunnels' protocols, fou first, each once, each protocol's in its order", () => {
    holds((spec, plan) => {
        for (const h of plan.hosts) {
            const protocols = new Set(tunnelsOf(spec, h.host).map((t) => t.protocol));
            assert.deepEqual(sorted(h.modules), sorted([...new Set([...protocols].flatMap((p) => MODULES[p]))]));
            assert.equal(h.modules[0], "fou");
            assert.equal(new Set(h.modules).size, h.modules.length);
            for (const p of protocols) {
                const at = MODULES[p].map((m) => h.modules.indexOf(m));
                assert.deepEqual(at, [...at].sort((x, y) => x - y), `${p}'s modules out of order in ${h.modules.join(" ")}`);
            }
        }
    });
});

test("a host forwards exactly when one of its tunnels carries routed prefixes (at either end)", () => {
    holds((spec, plan) => {
        for (const h of plan.hosts) {
            assert.equal(h.ipForward, tunnelsOf(spec, h.host).some((t) => t.ends.some((e) => e.routes.length > 0)));
        }
    });
});

test("every managed tunnel end is on its host's plan once, with its peer (far or not), and on no other; a far end has none", () => {
    holds((spec, plan) => {
        const planned = plan.hosts.flatMap((h) => h.ends.map((e) => ({ host: h.host, ...e })));
        const expected = spec.tunnels.flatMap((t) =>
            t.ends.flatMap((e, i) => (isFar(spec, e.host) ? [] : [{ host: e.host, tunnel: t.name, end: i, peer: t.ends[1 - i].host, peerExternal: isFar(spec, t.ends[1 - i].host) }])),
        );
        assert.deepEqual(sorted(planned.map((e) => JSON.stringify(e))), sorted(expected.map((e) => JSON.stringify(e))));
    });
});

test("each tunnel end's receive port is on its host's plan exactly once, and every planned port is used", () => {
    holds((spec, plan) => {
        for (const t of spec.tunnels) {
            for (const e of t.ends.filter((x) => !isFar(spec, x.host))) {
                const ports = planOf(plan, e.host).ports.filter((p) => p.tunnels.includes(t.name));
                assert.equal(ports.length, 1, `${t.name} on ${e.host}`);
                const [p] = ports;
                assert.deepEqual([p.port, p.encap, p.ipproto], [t.port, t.encap, portIpproto(t.encap, t.protocol)]);
            }
        }
        for (const h of plan.hosts) {
            assert.equal(new Set(h.ports.map((p) => p.port)).size, h.ports.length, `a port number twice on ${h.host}`);
            for (const p of h.ports) {
                const users = spec.tunnels.filter((t) => p.tunnels.includes(t.name));
                assert.ok(users.length >= 1);
                assert.ok(users.every((t) => t.ends.some((e) => e.host === h.host)));
                assert.equal(p.persist, users.some((t) => t.persist));
                // A far end is its operator's: nothing of the stack waits for it.
                const managed = [...new Set(users.flatMap((t) => t.ends.map((e) => e.host)))].filter((n) => !isFar(spec, n));
                assert.deepEqual(sorted(p.preparedFirst), sorted(managed));
            }
        }
    });
});

test("the firewall opens each receive port to the peers of the tunnels using it, and persists with any port", () => {
    holds((spec, plan) => {
        for (const h of plan.hosts) {
            if (spec.firewall === false) {
                assert.equal(h.firewall, undefined);
                continue;
            }
            assert.ok(h.firewall, `no firewall on ${h.host}`);
            assert.deepEqual(h.firewall.ports.map((p) => p.port), h.ports.map((p) => p.port));
            h.firewall.ports.forEach((fp, i) => {
                const peers = h.ports[i].tunnels.map((n) => spec.tunnels.find((t) => t.name === n)!.ends.find((e) => e.host !== h.host)!.host);
                assert.deepEqual(sorted(fp.peers), sorted([...new Set(peers)]), "each peer once");
            });
            assert.equal(h.firewall.persist, h.ports.some((p) => p.persist));
        }
    });
});

test("the kernel upgrades are one chain over the hosts that asked, each once, in topology order", () => {
    holds((spec, plan) => {
        const asked = spec.hosts.filter((h) => h.kernel?.upgrade);
        assert.deepEqual(plan.upgrades.map((u) => u.host), asked.map((h) => h.name));
        plan.upgrades.forEach((u, i) => {
            assert.equal(u.after, i === 0 ? undefined : plan.upgrades[i - 1].host);
            assert.deepEqual(u.kernel, asked[i].kernel);
            const mine = plan.hosts.find((h) => h.host === u.host);
            assert.deepEqual(u.modules, mine ? mine.modules : MODULES.ipip);
        });
    });
});

test("the plan depends on the topology only, and leaves it as it was", () => {
    holds((spec, plan) => {
        const copy = structuredClone(spec);
        assert.deepEqual(planTopology(copy), plan);
        assert.deepEqual(copy, spec);
    });
});

// ---------------------------------------------------------------------------------------------
// The example topologies

const LOCAL = { kind: "local", underlay: "198.51.100.1/24" } as const;
const load = (file: string) => loadTopology(path.join(REPO, "topologies", file), LOCAL);

test("the guide: on each host fou and ipip, no forwarding, FOU port 5555 open to the other host", () => {
    const plan = planTopology(load("guide.yaml"));
    const host = (host: string, peer: string, end: 0 | 1): HostPlan => ({
        host,
        modules: ["fou", "ipip"],
        ipForward: false,
        ends: [{ tunnel: "k1-k2", end, peer, peerExternal: false }],
        ports: [{ port: 5555, encap: "fou", ipproto: 4, persist: false, tunnels: ["k1-k2"], preparedFirst: ["k1", "k2"] }],
        firewall: { ports: [{ port: 5555, peers: [peer] }], persist: false },
    });
    assert.deepEqual(plan, { hosts: [host("k1", "k2", 0), host("k2", "k1", 1)], upgrades: [] });
});

test("guide-sit: the ipip tunnel's FOU port and the sit tunnel's GUE port on each host, and sit's module", () => {
    const plan = planTopology(load("guide-sit.yaml"));
    const k1 = planOf(plan, "k1");
    assert.deepEqual(k1.modules, ["fou", "ipip", "sit"]);
    assert.deepEqual(
        k1.ports.map((p) => [p.port, p.encap, p.ipproto, p.tunnels]),
        [
            [5555, "fou", 4, ["k1-k2"]],
            [5556, "gue", undefined, ["k1-k2-v6"]],
        ],
    );
    assert.deepEqual(k1.firewall?.ports, [
        { port: 5555, peers: ["k2"] },
        { port: 5556, peers: ["k2"] },
    ]);
});

test("mesh3: k3's GUE port is shared by k1-k3 and k2-k3 and open to k1 and k2; only k1 and k2 forward", () => {
    const plan = planTopology(load("mesh3.yaml"));
    assert.deepEqual(plan.hosts.map((h) => [h.host, h.modules.join(" "), h.ipForward]), [
        ["k1", "fou ipip", true],
        ["k2", "fou ipip sit", true],
        ["k3", "fou ipip sit", false],
    ]);
    const k3 = planOf(plan, "k3");
    assert.deepEqual(k3.ports, [{ port: 5556, encap: "gue", persist: true, tunnels: ["k1-k3", "k2-k3"], preparedFirst: ["k1", "k3", "k2"] }]);
    assert.deepEqual(k3.firewall, { ports: [{ port: 5556, peers: ["k1", "k2"] }], persist: true });
    assert.deepEqual(plan.upgrades, []);
});

test("upgrades: a host that asked without tunnels upgrades for the guide's modules, in the chain", () => {
    const base = load("guide.yaml");
    const kernel = { upgrade: true, rebootTimeout: 300 };
    const spec: TopologySpec = { ...base, hosts: [{ name: "k0", kernel }, ...base.hosts.map((h) => ({ ...h, kernel }))] };
    assert.deepEqual(
        planTopology(spec).upgrades.map((u) => [u.host, u.after, u.modules]),
        [
            ["k0", undefined, ["fou", "ipip"]],
            ["k1", "k0", ["fou", "ipip"]],
            ["k2", "k1", ["fou", "ipip"]],
        ],
    );
});

test("requiring the planner loads no Pulumi SDK", () => {
    const program = [
        'require("./components/topologyPlan");',
        "process.stdout.write(JSON.stringify(Object.keys(require.cache).filter((k) => /[\\\\/]node_modules[\\\\/]@pulumi[\\\\/]/.test(k))));",
    ].join("\n");
    const out = execFileSync(process.execPath, ["--require", "ts-node/register", "-e", program], {
        cwd: REPO,
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" },
        encoding: "utf8",
    });
    assert.deepEqual(JSON.parse(out), []);
});
