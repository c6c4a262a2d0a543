/**
 * Routed prefixes: keyed by the tunnel's hosts, of its family, with no host bits, and clear of
 * default routes, the local underlay, the tunnel's GWIPs and another tunnel's routes.
 */
import { Case, TWO_HOSTS, rejectsEach, y } from "./topologyFixtures";

const ROUTE_CASES: Case[] = [
    // Routes
    {
        rule: "routes are keyed by the tunnel's hosts",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                routes:
                  k3: [10.20.3.0/24]
        `,
        at: "t.yaml:8:7: tunnels[0].routes.k3",
        says: /^k3 is not a host of this tunnel; routes are keyed by its hosts k1, k2$/,
    },
    {
        rule: "routes of a host are a list",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: 10.20.2.0/24\n",
        at: "t.yaml:7:11: tunnels[0].routes.k1",
        says: /^must be a list of prefixes that k1 routes into the tunnel, like \[10.20.2.0\/24\] \(got "10.20.2.0\/24"\)$/,
    },
    {
        rule: "a route with host bits names the network",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: [10.20.2.1/24]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k1[0]",
        says: /^10.20.2.1\/24 has host bits set; the network is 10.20.2.0\/24$/,
    },
    {
        rule: "a route of the tunnel's family (sit: IPv6)",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    routes:\n      k2: [10.20.1.0/24]\n",
        at: "t.yaml:8:12: tunnels[0].routes.k2[0]",
        says: /^must be an IPv6 prefix like fd00:2::\/64 \(got "10.20.1.0\/24"\)$/,
    },
    {
        rule: "no default route",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: [0.0.0.0/0]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k1[0]",
        says: /^0.0.0.0\/0 is a default route; sending everything into the tunnel would cut the SSH path to the hosts$/,
    },
    {
        rule: "no IPv6 default route",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    routes:\n      k1: [\"::/0\"]\n",
        at: "t.yaml:8:12: tunnels[0].routes.k1[0]",
        says: /^::\/0 is a default route/,
    },
    {
        rule: "a route overlapping the local underlay",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k2: [198.51.0.0/16]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k2[0]",
        says: /^198.51.0.0\/16 overlaps the underlay network 198.51.100.0\/24 .*; routing it into the tunnel would cut the SSH path to the VMs$/,
    },
    {
        rule: "a route covering a GWIP of the tunnel",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    routes:\n      k1: [10.10.10.0/30]\n",
        at: "t.yaml:7:12: tunnels[0].routes.k1[0]",
        says: /^10.10.10.0\/30 contains 10.10.10.1 \(k1\) and 10.10.10.2 \(k2\), the GWIPs of this tunnel; /,
    },
    {
        rule: "the same prefix routed twice from one host",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                routes:
                  k1: [10.20.0.0/16]
              - hosts: [k1, k3]
                routes:
                  k1: [10.20.0.0/16]
        `,
        at: "t.yaml:11:12: tunnels[1].routes.k1[0]",
        says: /^k1 already routes 10.20.0.0\/16 into tunnel k1-k2 \(line 8\); a prefix can go through one tunnel only$/,
    },
];

rejectsEach(ROUTE_CASES);
