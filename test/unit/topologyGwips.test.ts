/**
 * GWIPs: allocation from the pools (explicit ones first, then file order), canonical IPv6, and the
 * checks on given GWIPs and on gwipPool and gwipPool6.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Case, T12, TWO_HOSTS, parse, rejectsEach, y } from "./topologyFixtures";

test("allocation reserves explicit GWIPs first, then goes in file order, end a then b", () => {
    const text = y`
        hosts:
          - name: k1
          - name: k2
          - name: k3
        tunnels:
          - hosts: [k1, k2]
          - hosts: [k1, k3]
            gwips: [10.10.10.1, 10.10.10.3]
          - hosts: [k2, k3]
    `;
    const t = parse(text);
    assert.deepEqual(
        t.tunnels.map((x) => x.ends.map((e) => e.gwip)),
        [
            ["10.10.10.2", "10.10.10.4"],
            ["10.10.10.1", "10.10.10.3"],
            ["10.10.10.5", "10.10.10.6"],
        ],
    );
    assert.deepEqual(parse(text), t, "the same file gives the same GWIPs");
});

test("an IPv4 pool's network and broadcast addresses are never allocated", () => {
    const t = parse(TWO_HOSTS + "gwipPool: 192.0.2.4/30\ntunnels:\n  - hosts: [k1, k2]\n");
    assert.deepEqual(
        t.tunnels[0].ends.map((e) => e.gwip),
        ["192.0.2.5", "192.0.2.6"],
    );
});

test("IPv6 GWIPs and prefixes come out canonical", () => {
    const t = parse(
        TWO_HOSTS +
            y`
            tunnels:
              - hosts: [k1, k2]
                protocol: sit
                gwips: [fd00:10:10:10:0::1, FD00:10:10:10::0002]
                routes:
                  k2: [fd00:20:0:0::/64, "2001:db8::1"]
        `,
    );
    assert.deepEqual(
        t.tunnels[0].ends.map((e) => [e.gwip, e.routes]),
        [
            ["fd00:10:10:10::1", []],
            ["fd00:10:10:10::2", ["fd00:20::/64", "2001:db8::1/128"]],
        ],
    );
    assert.equal(t.tunnels[0].family, 6);
});

const GWIP_CASES: Case[] = [
    // GWIPs and pools
    {
        rule: "gwips: exactly two",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1]\n",
        at: "t.yaml:6:12: tunnels[0].gwips",
        says: /^must be a list of two GWIPs, one per host in the order of hosts, like \[10.10.10.1, 10.10.10.2\] \(got a list of 1\)$/,
    },
    {
        rule: "gwips of a sit tunnel are IPv6",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [fd00::1, 10.10.10.2]\n",
        at: "t.yaml:7:22: tunnels[0].gwips[1]",
        says: /^a sit tunnel carries IPv6, so its GWIPs are IPv6 addresses like fd00:10:10:10::1 \(got 10.10.10.2\)$/,
    },
    {
        rule: "gwips of an ipip tunnel are IPv4",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [fd00::1, 10.10.10.2]\n",
        at: "t.yaml:6:13: tunnels[0].gwips[0]",
        says: /^an ipip tunnel carries IPv4, so its GWIPs are IPv4 addresses/,
    },
    {
        rule: "a GWIP is an address",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 10.10.10.256]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^must be an IPv4 address \(got "10.10.10.256"\)$/,
    },
    {
        rule: "a GWIP is not loopback",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [127.0.0.2, 10.10.10.2]\n",
        at: "t.yaml:6:13: tunnels[0].gwips[0]",
        says: /^127.0.0.2 is in 127.0.0.0\/8 \(loopback\); a GWIP must be a unicast address$/,
    },
    {
        rule: "a GWIP is not multicast",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 239.1.1.1]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^239.1.1.1 is in 224.0.0.0\/4 \(multicast\)/,
    },
    {
        rule: "a GWIP is not 0.0.0.0",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [0.0.0.0, 10.10.10.2]\n",
        at: "t.yaml:6:13: tunnels[0].gwips[0]",
        says: /^0.0.0.0 is in 0.0.0.0\/8/,
    },
    {
        rule: "an IPv6 GWIP is not link-local",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [fe80::1, fd00::2]\n",
        at: "t.yaml:7:13: tunnels[0].gwips[0]",
        says: /^fe80::1 is in fe80::\/10 \(link-local\); a GWIP must be a unicast address$/,
    },
    {
        rule: "an IPv6 GWIP is not ::1 (written long)",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [fd00::1, \"0:0:0:0:0:0:0:1\"]\n",
        at: "t.yaml:7:22: tunnels[0].gwips[1]",
        says: /^::1 is the loopback address ::1/,
    },
    {
        rule: "an IPv6 GWIP is not multicast",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    gwips: [ff02::1, fd00::2]\n",
        at: "t.yaml:7:13: tunnels[0].gwips[0]",
        says: /^ff02::1 is in ff00::\/8 \(multicast\)/,
    },
    {
        rule: "the two ends' GWIPs differ",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 10.10.10.1]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^10.10.10.1 is also the GWIP of the other end \(gwips\[0\]\); each end needs its own$/,
    },
    {
        rule: "a GWIP is used once in the file, naming where",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                gwips: [10.10.10.1, 10.10.10.2]
              - hosts: [k3, k1]
                gwips: [10.10.10.3, 10.10.10.1]
        `,
        at: "t.yaml:9:25: tunnels[1].gwips[1]",
        says: /^GWIP 10.10.10.1 is already the GWIP of k1 in tunnel k1-k2 \(line 7\); each GWIP may be used once in the file$/,
    },
    {
        rule: "IPv6 GWIPs collide whatever their spelling",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                protocol: sit
                gwips: [fd00::1, FD00:10::2]
              - hosts: [k1, k3]
                protocol: sit
                gwips: ["fd00:10:0:0:0:0:0:2", fd00::3]
        `,
        at: "t.yaml:11:13: tunnels[1].gwips[0]",
        says: /^GWIP fd00:10::2 is already the GWIP of k2 in tunnel k1-k2 \(line 8\)/,
    },
    {
        rule: "a GWIP in the local underlay network",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    gwips: [10.10.10.1, 198.51.100.7]\n",
        at: "t.yaml:6:25: tunnels[0].gwips[1]",
        says: /^198.51.100.7 lies in the underlay network 198.51.100.0\/24 .*; GWIPs must be outside it$/,
    },
    {
        rule: "gwipPool must be an IPv4 prefix",
        text: TWO_HOSTS + "gwipPool: fd00::/64\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^must be an IPv4 prefix like 10.10.10.0\/24; IPv6 GWIPs \(sit tunnels\) come from gwipPool6 \(got "fd00::\/64"\)$/,
    },
    {
        rule: "gwipPool6 must be an IPv6 prefix",
        text: TWO_HOSTS + "gwipPool6: 10.10.10\n" + T12,
        at: "t.yaml:4:12: gwipPool6",
        says: /^must be an IPv6 prefix like fd00:10:10:10::\/64 \(got "10.10.10"\)$/,
    },
    {
        rule: "gwipPool without host bits",
        text: TWO_HOSTS + "gwipPool: 10.10.10.1/24\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^10.10.10.1\/24 has host bits set; the network is 10.10.10.0\/24$/,
    },
    {
        rule: "gwipPool with room for a tunnel",
        text: TWO_HOSTS + "gwipPool: 10.10.10.0/31\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^10.10.10.0\/31 has room for fewer than the 2 GWIPs of one tunnel; use a prefix of length 30 or shorter$/,
    },
    {
        rule: "gwipPool6 not multicast",
        text: TWO_HOSTS + "gwipPool6: ff00::/64\n" + T12,
        at: "t.yaml:4:12: gwipPool6",
        says: /^ff00::\/64 overlaps addresses that are in ff00::\/8 \(multicast\); GWIPs must be unicast addresses$/,
    },
    {
        rule: "an exhausted pool names the end that got nothing",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            gwipPool: 10.10.10.0/30
            tunnels:
              - hosts: [k1, k2]
              - hosts: [k1, k3]
        `,
        at: "t.yaml:8:5: tunnels[1].gwips",
        says: /^gwipPool 10.10.10.0\/30 has no free address left for the GWIP of k1; give gwips or use a larger pool$/,
    },
    {
        rule: "an explicit gwipPool overlapping the local underlay",
        text: TWO_HOSTS + "gwipPool: 198.51.100.128/25\n" + T12,
        at: "t.yaml:4:11: gwipPool",
        says: /^198.51.100.128\/25 overlaps the underlay network 198.51.100.0\/24; GWIPs must lie outside it$/,
    },
    {
        rule: "the default gwipPool overlapping the local underlay, when used",
        text: TWO_HOSTS + T12,
        options: { kind: "local", underlay: "10.10.0.1/16" },
        at: "t.yaml:1:1: gwipPool",
        says: /^the default pool 10.10.10.0\/24 overlaps the underlay network 10.10.0.0\/16; GWIPs must lie outside it: set gwipPool$/,
    },
];

rejectsEach(GWIP_CASES);
