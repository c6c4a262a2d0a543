/**
 * The topology's hosts: the list, each host's name, its address on the local underlay (explicit
 * or defaulted), and the keys aws hosts may not have; tunnels are not checked against a hosts
 * section that is itself wrong.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AWS, Case, T12, TWO_HOSTS, problems, rejectsEach } from "./topologyFixtures";

const HOST_CASES: Case[] = [
    // Hosts
    {
        rule: "hosts is required",
        text: T12,
        at: "t.yaml:1:1: hosts",
        says: /^required: a list of at least 2 hosts/,
    },
    {
        rule: "hosts lists at least two",
        text: "hosts:\n  - name: k1\n" + T12,
        at: "t.yaml:2:3: hosts",
        says: /^must list at least 2 hosts, since a tunnel joins two \(got 1\)$/,
    },
    {
        rule: "a host is a mapping",
        text: "hosts: [k1, k2]\n" + T12,
        at: "t.yaml:1:9: hosts[0]",
        says: /^must be a mapping like \{name: k1\} \(got "k1"\)$/,
    },
    {
        rule: "host name is required",
        text: "hosts:\n  - name: k1\n  - fou: true\n" + T12,
        at: "t.yaml:3:5: hosts[1].name",
        says: /^required: the host's name, like k1$/,
    },
    {
        rule: "host name syntax (checkHostName)",
        text: "hosts:\n  - name: K1\n  - name: k2\n" + T12,
        at: "t.yaml:2:11: hosts[0].name",
        says: /^must be 1-12 characters of a-z, 0-9 and '-', starting with a letter \(got "K1"\)$/,
    },
    {
        rule: "host name too long for fto<peer>",
        text: "hosts:\n  - name: averyverylongname\n  - name: k2\n",
        at: "t.yaml:2:11: hosts[0].name",
        says: /^must be 1-12 characters/,
    },
    {
        rule: "duplicate host name",
        text: "hosts:\n  - name: k1\n  - name: k1\n" + T12,
        at: "t.yaml:3:11: hosts[1].name",
        says: /^host name k1 is already used by hosts\[0\] \(line 2\)$/,
    },
    {
        rule: "address must be IPv4",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.300\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^must be an IPv4 address like 198.51.100.151 \(got "198.51.100.300"\)$/,
    },
    {
        rule: "address inside the underlay network",
        text: "hosts:\n  - name: k1\n    address: 203.0.113.5\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^203.0.113.5 is outside the underlay network 198.51.100.0\/24 \(this machine is 198.51.100.1\)$/,
    },
    {
        rule: "address is not the network address",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.0\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^198.51.100.0 is the address of the underlay network 198.51.100.0\/24 itself/,
    },
    {
        rule: "address is not the gateway's",
        text: "hosts:\n  - name: k1\n  - name: k2\n    address: 198.51.100.1\n" + T12,
        at: "t.yaml:4:14: hosts[1].address",
        says: /^198.51.100.1 is the gateway's own address \(this machine on the VM bridge\)$/,
    },
    {
        rule: "address is not the broadcast",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.255\n  - name: k2\n" + T12,
        at: "t.yaml:3:14: hosts[0].address",
        says: /^198.51.100.255 is the broadcast address of the underlay network 198.51.100.0\/24$/,
    },
    {
        rule: "an explicit address equal to another host's defaulted one",
        text: "hosts:\n  - name: k1\n  - name: k2\n    address: 198.51.100.151\n" + T12,
        at: "t.yaml:4:14: hosts[1].address",
        says: /^198.51.100.151 is already the address of k1 \(line 2\); each host needs its own$/,
    },
    {
        rule: "a defaulted address equal to an explicit one",
        text: "hosts:\n  - name: k1\n    address: 198.51.100.152\n  - name: k2\n" + T12,
        at: "t.yaml:4:5: hosts[1].address",
        says: /^the default address 198.51.100.152 \(the underlay network \+ 152\) is already the address of k1 \(line 3\); each host needs its own; set address$/,
    },
    {
        rule: "a defaulted address outside a small underlay network",
        text: TWO_HOSTS + T12,
        options: { kind: "local", underlay: "198.51.100.1/25" },
        at: "t.yaml:2:5: hosts[0].address",
        says: /^the default address 198.51.100.151 \(the underlay network \+ 151\) is outside the underlay network 198.51.100.0\/25 .*; set address$/,
    },
    {
        rule: "address on aws",
        text: "hosts:\n  - name: k1\n    address: 10.0.0.5\n  - name: k2\n" + T12,
        options: AWS,
        at: "t.yaml:3:5: hosts[0].address",
        says: /^not allowed for aws hosts: EC2 assigns the addresses$/,
    },
    {
        rule: "fou on aws",
        text: "hosts:\n  - name: k1\n  - name: k2\n    fou: false\n" + T12,
        options: AWS,
        at: "t.yaml:4:5: hosts[1].fou",
        says: /^not allowed for aws hosts/,
    },
    {
        rule: "fou must be a YAML boolean",
        text: "hosts:\n  - name: k1\n    fou: no\n  - name: k2\n" + T12,
        at: "t.yaml:3:10: hosts[0].fou",
        says: /^must be true or false \(got "no"; YAML 1.2 reads no as a string\)$/,
    },
];

rejectsEach(HOST_CASES);

test("tunnels naming hosts are not reported when the hosts section itself is wrong", () => {
    assert.deepEqual(problems("hosts: k1\n" + T12), [
        "t.yaml:1:8: hosts: must be a list of at least 2 hosts, each like {name: k1} (got \"k1\")",
    ]);
});
