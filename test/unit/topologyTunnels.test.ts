/**
 * The topology's tunnels: the hosts each joins, the values of a tunnel and of defaults, interface
 * names, tunnel names, and one tunnel per protocol and pair of hosts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Case, T12, TWO_HOSTS, problems, rejectsEach, y } from "./topologyFixtures";

const TUNNEL_CASES: Case[] = [
    // Tunnels and their hosts
    {
        rule: "tunnels is required",
        text: TWO_HOSTS,
        at: "t.yaml:1:1: tunnels",
        says: /^required: a list of at least 1 tunnel/,
    },
    {
        rule: "tunnels is not empty",
        text: TWO_HOSTS + "tunnels: []\n",
        at: "t.yaml:4:10: tunnels",
        says: /^must be a non-empty list of tunnels, each like \{hosts: \[k1, k2\]\} \(got a list of 0\)$/,
    },
    {
        rule: "a tunnel's hosts are required",
        text: TWO_HOSTS + "tunnels:\n  - port: 5555\n",
        at: "t.yaml:5:5: tunnels[0].hosts",
        says: /^required: the two hosts the tunnel joins, like \[k1, k2\] \(the hosts are k1, k2\)$/,
    },
    {
        rule: "a tunnel joins two hosts",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1]\n",
        at: "t.yaml:5:12: tunnels[0].hosts",
        says: /^must be a list of the two hosts the tunnel joins, like \[k1, k2\] \(got a list of 1\)$/,
    },
    {
        rule: "unknown host, naming the hosts there are",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k3]\n",
        at: "t.yaml:5:17: tunnels[0].hosts[1]",
        says: /^unknown host "k3"; the hosts are k1, k2$/,
    },
    {
        rule: "a tunnel joins two different hosts",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k2, k2]\n",
        at: "t.yaml:5:12: tunnels[0].hosts",
        says: /^joins k2 to itself; a tunnel joins two different hosts$/,
    },
    // Values
    {
        rule: "protocol enum",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: ip6ip6\n",
        at: "t.yaml:6:15: tunnels[0].protocol",
        says: /^must be one of ipip, sit, gre \(got "ip6ip6"\)$/,
    },
    {
        rule: "encap enum",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    encap: FOU\n",
        at: "t.yaml:6:12: tunnels[0].encap",
        says: /^must be one of fou, gue \(got "FOU"\)$/,
    },
    {
        rule: "port range",
        text: "hosts:\n  - name: k1\n  - name: k2\n  - name: k3\n" + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k3]\n    protocol: gre\n    port: 70000\n",
        at: "t.yaml:9:11: tunnels[1].port",
        says: /^must be a UDP port number from 1 to 65535 \(got 70000\)$/,
    },
    {
        rule: "port is a number, not a string",
        text: TWO_HOSTS + 'tunnels:\n  - hosts: [k1, k2]\n    port: "5555"\n',
        at: "t.yaml:6:11: tunnels[0].port",
        says: /^must be a UDP port number from 1 to 65535 \(got "5555"\)$/,
    },
    {
        rule: "sport is auto or a port",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    sport: fixed\n",
        at: "t.yaml:6:12: tunnels[0].sport",
        says: /^must be "auto" or a UDP port number from 1 to 65535 \(got "fixed"\)$/,
    },
    {
        rule: "csum must be a YAML boolean",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    csum: yes\n",
        at: "t.yaml:6:11: tunnels[0].csum",
        says: /^must be true or false \(got "yes"; YAML 1.2 reads yes as a string\)$/,
    },
    {
        rule: "persist must be a YAML boolean",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    persist: 1\n",
        at: "t.yaml:6:14: tunnels[0].persist",
        says: /^must be true or false \(got 1\)$/,
    },
    {
        rule: "mtu range",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    mtu: 40\n",
        at: "t.yaml:6:10: tunnels[0].mtu",
        says: /^must be an integer from 68 to 65535 \(got 40\)$/,
    },
    {
        rule: "mtu of a sit tunnel is at least 1280",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n    mtu: 1000\n",
        at: "t.yaml:7:10: tunnels[0].mtu",
        says: /^1000 is below 1280, the smallest MTU IPv6 allows/,
    },
    {
        rule: "mtu from defaults checked against a sit tunnel, pointing at the tunnel",
        text: TWO_HOSTS + "defaults:\n  mtu: 1000\ntunnels:\n  - hosts: [k1, k2]\n    protocol: sit\n",
        at: "t.yaml:7:5: tunnels[0].mtu",
        says: /^1000 \(from defaults.mtu, line 5\) is below 1280/,
    },
    {
        rule: "ttl range",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    ttl: 0\n",
        at: "t.yaml:6:10: tunnels[0].ttl",
        says: /^must be an integer from 1 to 255 \(got 0\)$/,
    },
    {
        rule: "a bad value in defaults",
        text: TWO_HOSTS + "defaults:\n  port: 0\n" + T12,
        at: "t.yaml:5:9: defaults.port",
        says: /^must be a UDP port number from 1 to 65535 \(got 0\)$/,
    },
    // Interfaces
    {
        rule: "interfaces: exactly two",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: ftok2\n",
        at: "t.yaml:6:17: tunnels[0].interfaces",
        says: /^must be a list of two interface names, one per host in the order of hosts, like \[ftok2, ftok1\] \(got "ftok2"\)$/,
    },
    {
        rule: "an interface name is at most 15 characters",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: [tunnel-to-k2-fou, ftok1]\n",
        at: "t.yaml:6:18: tunnels[0].interfaces[0]",
        says: /^"tunnel-to-k2-fou" is 16 characters; interface names have at most 15$/,
    },
    {
        rule: "an interface name has no odd characters",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: [ftok2, \"fto k1\"]\n",
        at: "t.yaml:6:25: tunnels[0].interfaces[1]",
        says: /^"fto k1" may only contain letters, digits/,
    },
    {
        rule: "an interface is not lo",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    interfaces: [lo, ftok1]\n",
        at: "t.yaml:6:18: tunnels[0].interfaces[0]",
        says: /^lo is the loopback interface; choose another name$/,
    },
    {
        rule: "two tunnels defaulting to the same interface on a host, with a hint",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k2]\n    name: k1-k2-gre\n    protocol: gre\n    port: 5556\n",
        at: "t.yaml:6:5: tunnels[1].interfaces",
        says: /^the default interface name ftok2 on k1 is already used by tunnel k1-k2 \(line 5\); set interfaces to give this tunnel other names$/,
    },
    {
        rule: "an explicit interface already used on that host",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
              - hosts: [k3, k1]
                interfaces: [ftok1, ftok2]
        `,
        at: "t.yaml:8:25: tunnels[1].interfaces[1]",
        says: /^interface ftok2 on k1 is already used by tunnel k1-k2 \(line 6\); set interfaces/,
    },
    // Tunnel names
    {
        rule: "tunnel name syntax",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n    name: K1_K2\n",
        at: "t.yaml:6:11: tunnels[0].name",
        says: /^must be 1-31 characters of a-z, 0-9 and '-', starting with a letter \(got "K1_K2"\)$/,
    },
    {
        rule: "duplicate explicit tunnel names",
        text: y`
            hosts:
              - name: k1
              - name: k2
              - name: k3
            tunnels:
              - hosts: [k1, k2]
                name: main
              - hosts: [k1, k3]
                name: main
        `,
        at: "t.yaml:9:11: tunnels[1].name",
        says: /^tunnel name main is already used by tunnels\[0\] \(line 6\)$/,
    },
    {
        rule: "two unnamed tunnels between the same hosts get the same default name, with a hint",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k2]\n    protocol: sit\n    port: 5556\n    interfaces: [sit2, sit1]\n",
        at: "t.yaml:6:5: tunnels[1].name",
        says: /^the default name k1-k2 is already the name of tunnels\[0\] \(line 5\); set name to tell these tunnels apart$/,
    },
    // One tunnel per protocol and pair
    {
        rule: "two tunnels of one protocol between the same hosts, in either order",
        text: TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k2, k1]\n    port: 5556\n",
        at: "t.yaml:6:12: tunnels[1].hosts",
        says: /^k2 and k1 are already joined by ipip tunnel k1-k2 \(line 5\); the kernel tells ipip tunnels apart only by local and remote address/,
    },
    // Defaults
    {
        rule: "defaults cannot set per-tunnel keys",
        text: TWO_HOSTS + "defaults:\n  gwips: [10.10.10.1, 10.10.10.2]\n" + T12,
        at: "t.yaml:5:3: defaults.gwips",
        says: /^gwips is set per tunnel and cannot have a default; defaults may set protocol, encap, port, sport, csum, mtu, ttl, persist$/,
    },
    {
        rule: "defaults is a mapping",
        text: TWO_HOSTS + "defaults: [port, 5555]\n" + T12,
        at: "t.yaml:4:11: defaults",
        says: /^must be a mapping of tunnel values, like \{port: 5555\} \(got a list of 2\)$/,
    },
];

rejectsEach(TUNNEL_CASES);

test("a second tunnel of the same protocol and pair is reported once, as such", () => {
    // Its default name and interfaces repeat the first tunnel's too, but renaming would not help.
    const found = problems(TWO_HOSTS + "tunnels:\n  - hosts: [k1, k2]\n  - hosts: [k1, k2]\n    port: 5556\n");
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0], /^t\.yaml:6:12: tunnels\[1\]\.hosts: k1 and k2 are already joined by ipip tunnel k1-k2 \(line 5\)/);
});
