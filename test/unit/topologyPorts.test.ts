/**
 * Receive ports: tunnels with the same port and binding share one, a FOU port delivers one inner
 * protocol and is never a GUE port, and a fixed source port is no receive port.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Case, TWO_HOSTS, parse, rejectsEach, y } from "./topologyFixtures";

test("tunnels with the same port and binding share one port; ports come in host order then port", () => {
    const t = parse(y`
        hosts:
          - name: k2
          - name: k1
          - name: k3
        tunnels:
          - hosts: [k1, k3]
          - hosts: [k1, k2]
            persist: true
          - hosts: [k1, k2]
            name: k1-k2-gre
            protocol: gre
            encap: gue
            port: 5000
            interfaces: [gre2, gre1]
    `);
    assert.deepEqual(
        t.ports.map((p) => [p.host, p.port, p.encap, p.ipproto, p.persist, p.tunnels]),
        [
            ["k2", 5000, "gue", undefined, false, ["k1-k2-gre"]],
            ["k2", 5555, "fou", 4, true, ["k1-k2"]],
            ["k1", 5000, "gue", undefined, false, ["k1-k2-gre"]],
            ["k1", 5555, "fou", 4, true, ["k1-k3", "k1-k2"]],
            ["k3", 5555, "fou", 4, false, ["k1-k3"]],
        ],
    );
    assert.equal("ipproto" in t.ports[0], false, "a GUE port has no ipproto");
    assert.deepEqual(t.tunnels[2].ends.map((e) => e.ifname), ["gre2", "gre1"]);
    assert.equal(t.tunnels[2].ipproto, 47);
});

const PORT_CASES: Case[] = [
    // Receive ports
    {
        rule: "a FOU port delivers one inner protocol",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
              - hosts: [k1, k3]
                protocol: sit
        `,
        at: "t.yaml:7:5: tunnels[1].port",
        says: /^port 5555 on k1 is already a FOU port delivering ipproto 4 \(ipip\) for tunnel k1-k2 \(line 6\), but this tunnel needs a FOU port delivering ipproto 41 \(sit\); .*use another port or encap gue$/,
    },
    {
        rule: "a FOU port cannot be a GUE port",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            defaults:
              port: 6000
            tunnels:
              - hosts: [k1, k2]
                encap: gue
              - hosts: [k3, k2]
        `,
        at: "t.yaml:10:5: tunnels[1].port",
        says: /^port 6000 \(from defaults.port, line 6\) on k2 is already a GUE port for tunnel k1-k2 \(line 8\), but this tunnel needs a FOU port delivering ipproto 4 \(ipip\)/,
    },
    {
        rule: "a fixed sport is not a receive port of the tunnel's hosts",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    sport: 5555\n",
        at: "t.yaml:6:12: tunnels[0].sport",
        says: /^5555 is also a receive port on k1 \(tunnel k1-k2, line 5\) and on k2 \(tunnel k1-k2, line 5\); a fixed sport must differ from every receive port of the tunnel's hosts$/,
    },
];

rejectsEach(PORT_CASES);
