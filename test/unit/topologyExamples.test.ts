/**
 * Topology files that parse: the shipped examples (guide.yaml, mesh3.yaml) exactly, the smallest
 * file getting the guide's values from the defaults, defaults against a tunnel's own values, and
 * the hosts of an aws stack and of a local one without an underlay option.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_GWIP_POOL, DEFAULT_GWIP_POOL6, DEFAULT_PORT, loadTopology } from "../../topology";
import { AWS, LOCAL, T12, TWO_HOSTS, parse, y } from "./topologyFixtures";

test("guide.yaml is exactly the guide's two hosts and tunnel", () => {
    const t = loadTopology("topologies/guide.yaml", LOCAL);
    assert.deepEqual(t, {
        source: "topologies/guide.yaml",
        hosts: [
            { name: "k1", address: "198.51.100.151", fou: true },
            { name: "k2", address: "198.51.100.152", fou: true },
        ],
        externalHosts: [],
        tunnels: [
            {
                name: "k1-k2",
                protocol: "ipip",
                ipproto: 4,
                family: 4,
                encap: "fou",
                port: 5555,
                sport: "auto",
                csum: false,
                ttl: 255,
                persist: false,
                ends: [
                    { host: "k1", gwip: "10.10.10.1", ifname: "ftok2", routes: [] },
                    { host: "k2", gwip: "10.10.10.2", ifname: "ftok1", routes: [] },
                ],
            },
        ],
        ports: [
            { host: "k1", port: 5555, encap: "fou", ipproto: 4, persist: false, tunnels: ["k1-k2"] },
            { host: "k2", port: 5555, encap: "fou", ipproto: 4, persist: false, tunnels: ["k1-k2"] },
        ],
        // Receive ports are closed to strangers unless the file says `firewall: false`.
        firewall: true,
    });
    assert.equal("mtu" in t.tunnels[0], false);
});

test("the smallest topology gets the guide's values from the defaults", () => {
    const t = parse(TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n");
    const guide = loadTopology("topologies/guide.yaml", LOCAL);
    assert.deepEqual({ ...t, source: guide.source }, guide);
    assert.equal(DEFAULT_PORT, 5555);
    assert.equal(DEFAULT_GWIP_POOL, "10.10.10.0/24");
    assert.equal(DEFAULT_GWIP_POOL6, "fd00:10:10:10::/64");
});

test("mesh3.yaml: three tunnels of three kinds, persisted, k3's GUE port 5556 shared", () => {
    const t = loadTopology("topologies/mesh3.yaml", LOCAL);
    assert.deepEqual(
        t.hosts.map((h) => [h.name, h.address, h.fou]),
        [
            ["k1", "198.51.100.151", true],
            ["k2", "198.51.100.152", true],
            ["k3", "198.51.100.153", true],
        ],
    );
    const [k1k2, k1k3, k2k3] = t.tunnels;
    assert.deepEqual(t.tunnels.map((x) => x.name), ["k1-k2", "k1-k3", "k2-k3"]);
    assert.ok(t.tunnels.every((x) => x.persist));

    assert.deepEqual([k1k2.protocol, k1k2.ipproto, k1k2.family, k1k2.encap, k1k2.port, k1k2.sport, k1k2.csum], ["ipip", 4, 4, "fou", 5555, "auto", false]);
    assert.deepEqual(k1k2.ends, [
        { host: "k1", gwip: "10.10.10.1", ifname: "ftok2", routes: ["10.20.2.0/24"] },
        { host: "k2", gwip: "10.10.10.2", ifname: "ftok1", routes: [] },
    ]);

    assert.deepEqual([k1k3.protocol, k1k3.ipproto, k1k3.encap, k1k3.port, k1k3.sport, k1k3.csum], ["ipip", 4, "gue", 5556, 5600, true]);
    assert.deepEqual(
        k1k3.ends.map((e) => [e.host, e.gwip, e.ifname]),
        [
            ["k1", "10.10.10.3", "ftok3"],
            ["k3", "10.10.10.4", "ftok1"],
        ],
    );

    assert.deepEqual([k2k3.protocol, k2k3.ipproto, k2k3.family, k2k3.encap, k2k3.port, k2k3.sport, k2k3.csum], ["sit", 41, 6, "gue", 5556, "auto", false]);
    assert.deepEqual(
        k2k3.ends.map((e) => [e.host, e.gwip, e.ifname]),
        [
            ["k2", "fd00:10:10:10::1", "ftok3"],
            ["k3", "fd00:10:10:10::2", "ftok2"],
        ],
    );

    assert.deepEqual(t.ports, [
        { host: "k1", port: 5555, encap: "fou", ipproto: 4, persist: true, tunnels: ["k1-k2"] },
        { host: "k1", port: 5556, encap: "gue", persist: true, tunnels: ["k1-k3"] },
        { host: "k2", port: 5555, encap: "fou", ipproto: 4, persist: true, tunnels: ["k1-k2"] },
        { host: "k2", port: 5556, encap: "gue", persist: true, tunnels: ["k2-k3"] },
        { host: "k3", port: 5556, encap: "gue", persist: true, tunnels: ["k1-k3", "k2-k3"] },
    ]);
});


test("aws hosts have no address; fou is true", () => {
    const t = parse(TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n", AWS);
    assert.deepEqual(t.hosts, [
        { name: "k1", fou: true },
        { name: "k2", fou: true },
    ]);
    // No underlay on aws: a pool the local bridge would overlap is fine.
    parse(TWO_HOSTS + "gwipPool: 198.51.100.0/24\ntunnels:\n  - hosts: [k1, k2]\n", AWS);
});

test("defaults apply to every tunnel a tunnel's own value overrides; fou: false and mtu pass through", () => {
    const t = parse(y`
        hosts:
          - name: k1
            fou: false
          - name: k2
            address: 198.51.100.20
          - name: k3
        defaults:
          encap: gue
          port: 6000
          mtu: 1400
          ttl: 64
        tunnels:
          - hosts: [k1, k2]
          - hosts: [k3, k1]
            port: 6001
            mtu: 1300
            csum: true
    `);
    assert.deepEqual(
        t.hosts.map((h) => [h.name, h.address, h.fou]),
        [
            ["k1", "198.51.100.151", false],
            ["k2", "198.51.100.20", true],
            ["k3", "198.51.100.153", true],
        ],
    );
    assert.deepEqual(
        t.tunnels.map((x) => [x.name, x.encap, x.port, x.mtu, x.ttl, x.csum]),
        [
            ["k1-k2", "gue", 6000, 1400, 64, false],
            ["k3-k1", "gue", 6001, 1300, 64, true],
        ],
    );
});


test("a local topology without an underlay option is on the guide's bridge", () => {
    const t = parse(TWO_HOSTS + T12, { kind: "local" });
    assert.deepEqual(
        t.hosts.map((h) => h.address),
        ["198.51.100.151", "198.51.100.152"],
    );
});
