import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSettings } from "../../config";
import { loadTopology } from "../../topology";
import { FouInputError } from "../../lib/validate";

function settingsFrom(cfg: Record<string, unknown>) {
    return parseSettings((k) => cfg[k]);
}

function rejects(cfg: Record<string, unknown>, message: RegExp) {
    assert.throws(
        () => settingsFrom(cfg),
        (e: unknown) => e instanceof FouInputError && message.test(e.message),
        `expected ${message} for ${JSON.stringify(cfg)}`,
    );
}

test("the defaults are the guide's tunnel on local VMs", () => {
    const s = settingsFrom({});
    assert.equal(s.topology.tunnels.length, 1);
    const t = s.topology.tunnels[0];
    assert.equal(t.name, "k1-k2");
    assert.equal(t.port, 5555);
    assert.deepEqual(t.ends.map((e) => [e.host, e.gwip, e.ifname]), [
        ["k1", "10.10.10.1", "ftok2"],
        ["k2", "10.10.10.2", "ftok1"],
    ]);
    assert.deepEqual(
        s.local.vms.map((v) => [v.name, v.address]),
        [
            ["k1", "198.51.100.151"],
            ["k2", "198.51.100.152"],
        ],
    );
    assert.equal(s.tunnel, true);
    assert.equal(s.check, true);
});

test("the guide's keys give the model guide.yaml gives, under the stack's own label", () => {
    const s = settingsFrom({});
    const file = loadTopology("topologies/guide.yaml", { kind: "local", underlay: s.local.gateway });
    assert.equal(s.topology.source, "fou-tunnel stack settings (the guide's two hosts)");
    assert.deepEqual({ ...s.topology, source: file.source }, file);
    const moved = settingsFrom({ port: 6000, gwips: ["10.9.9.1", "10.9.9.2"], localVms: [{ name: "a1", address: "198.51.100.10", fou: "false" }, { name: "b2", address: "198.51.100.11" }] });
    assert.deepEqual(moved.topology.hosts, [
        { name: "a1", address: "198.51.100.10", fou: false },
        { name: "b2", address: "198.51.100.11", fou: true },
    ]);
    assert.deepEqual(moved.topology.tunnels[0].ends, [
        { host: "a1", gwip: "10.9.9.1", ifname: "ftob2", routes: [] },
        { host: "b2", gwip: "10.9.9.2", ifname: "ftoa1", routes: [] },
    ]);
    assert.deepEqual(moved.topology.ports.map((p) => [p.host, p.port, p.tunnels]), [
        ["a1", 6000, ["a1-b2"]],
        ["b2", 6000, ["a1-b2"]],
    ]);
    assert.deepEqual(settingsFrom({ hosts: "aws", awsOperatorCidr: "203.0.113.0/24" }).topology.hosts, [
        { name: "k1", fou: true },
        { name: "k2", fou: true },
    ]);
});

test("string forms of numbers and booleans from `pulumi config set` are accepted", () => {
    const s = settingsFrom({ port: "6000", tunnel: "false" });
    assert.equal(s.topology.tunnels[0].port, 6000);
    assert.equal(s.tunnel, false);
});

const INVALID: [Record<string, unknown>, RegExp][] = [
    [{ port: 0 }, /^fou-tunnel:port must be a UDP port number from 1 to 65535 \(got 0\)$/],
    [{ port: 70000 }, /fou-tunnel:port must be a UDP port number/],
    [{ port: "55a" }, /fou-tunnel:port must be a UDP port number .*"55a"/],
    [{ port: 5555.5 }, /fou-tunnel:port/],
    [{ gwips: ["10.10.10.1"] }, /fou-tunnel:gwips must be a list of two IPv4 addresses/],
    [{ gwips: ["10.10.10.1", "10.10.10.1"] }, /fou-tunnel:gwips gives both hosts 10.10.10.1/],
    [{ gwips: ["10.10.10.1", "10.10.10.300"] }, /fou-tunnel:gwips\[1\] must be an IPv4 address/],
    [{ gwips: ["10.10.10.1", "; rm -rf /"] }, /fou-tunnel:gwips\[1\] must be an IPv4 address .*rm -rf/],
    [{ gwips: ["127.0.0.1", "10.10.10.2"] }, /fou-tunnel:gwips\[0\] 127.0.0.1 is not a unicast host address/],
    [{ gwips: ["198.51.100.7", "10.10.10.2"] }, /fou-tunnel:gwips\[0\] 198.51.100.7 lies in the underlay network/],
    [{ gwips: ["010.10.10.1", "10.10.10.2"] }, /fou-tunnel:gwips\[0\] must be an IPv4 address/],
    // Rules of a topology file's gwips and addresses, named by the key (they once cited a generated file).
    [{ gwips: ["0.1.2.3", "10.10.10.2"] }, /^fou-tunnel:gwips\[0\] 0\.1\.2\.3 is in 0\.0\.0\.0\/8 \(this network\); a GWIP must be a unicast address$/],
    [{ hosts: "aws", awsOperatorCidr: "203.0.113.0/24", gwips: ["10.10.10.1", "0.0.0.2"] }, /^fou-tunnel:gwips\[1\] 0\.0\.0\.2 is in 0\.0\.0\.0\/8/],
    [{ hosts: "gcp" }, /fou-tunnel:hosts must be "local"/],
    [{ tunnel: "yes" }, /fou-tunnel:tunnel must be true or false/],
    [{ localGateway: "198.51.100.1" }, /fou-tunnel:localGateway must be this machine's address on the VM network with its length/],
    [{ localVmMemory: 200 }, /fou-tunnel:localVmMemory must be an integer from 256 to 8192/],
    [{ localVms: [{ name: "k1", address: "198.51.100.151" }] }, /fou-tunnel:localVms must list two VMs/],
    [
        { localVms: [{ name: "K1 x", address: "198.51.100.151" }, { name: "k2", address: "198.51.100.152" }] },
        /fou-tunnel:localVms\[0\].name must be 1-12 characters/,
    ],
    [
        { localVms: [{ name: "averyveryverylongname", address: "198.51.100.151" }, { name: "k2", address: "198.51.100.152" }] },
        /fou-tunnel:localVms\[0\].name must be 1-12 characters/,
    ],
    [
        { localVms: [{ name: "k1", address: "203.0.113.5" }, { name: "k2", address: "198.51.100.152" }] },
        /fou-tunnel:localVms\[0\].address 203.0.113.5 is outside the VM network 198.51.100.1\/24/,
    ],
    [
        { localVms: [{ name: "k1", address: "198.51.100.1" }, { name: "k2", address: "198.51.100.152" }] },
        /fou-tunnel:localVms\[0\].address 198.51.100.1 is the gateway's own address/,
    ],
    [
        { localVms: [{ name: "k1", address: "198.51.100.0" }, { name: "k2", address: "198.51.100.152" }] },
        /^fou-tunnel:localVms\[0\]\.address 198\.51\.100\.0 is the address of the VM network 198\.51\.100\.0\/24 itself; VMs need a host address$/,
    ],
    [
        { localVms: [{ name: "k1", address: "198.51.100.151" }, { name: "k2", address: "198.51.100.255" }] },
        /^fou-tunnel:localVms\[1\]\.address 198\.51\.100\.255 is the broadcast address of the VM network 198\.51\.100\.0\/24$/,
    ],
    [
        { localVms: [{ name: "k1", address: "198.51.100.151" }, { name: "k1", address: "198.51.100.152" }] },
        /both VMs are named "k1"/,
    ],
    [
        { localVms: [{ name: "k1", address: "198.51.100.151" }, { name: "k2", address: "198.51.100.151" }] },
        /both VMs have address 198.51.100.151/,
    ],
    [
        { localVms: [{ name: "k1", address: "198.51.100.151", fou: "no" }, { name: "k2", address: "198.51.100.152" }] },
        /fou-tunnel:localVms\[0\].fou must be true or false/,
    ],
    [{ sshDialTimeout: 0 }, /fou-tunnel:sshDialTimeout must be an integer from 1 to 300 \(got 0\)/],
    [{ sshDialTimeout: "soon" }, /fou-tunnel:sshDialTimeout must be an integer from 1 to 300/],
    [{ firewall: "no" }, /fou-tunnel:firewall must be true or false/],
    [{ firewall: false, topology: "topologies/guide.yaml" }, /fou-tunnel:firewall cannot be combined with fou-tunnel:topology/],
    [{ forgetHosts: "k2" }, /fou-tunnel:forgetHosts must be a list of host names \(got "k2"\)/],
    [{ forgetHosts: ["k3"] }, /fou-tunnel:forgetHosts names "k3", which is not a host of/],
];

for (const [cfg, message] of INVALID) {
    test(`rejects ${JSON.stringify(cfg)}`, () => rejects(cfg, message));
}

test("the guide's keys: firewall on by default, off with firewall: false", () => {
    assert.equal(settingsFrom({}).topology.firewall, true);
    assert.equal(settingsFrom({ firewall: false }).topology.firewall, false);
});

test("forgetHosts and sshDialTimeout are read when valid", () => {
    const s = settingsFrom({ forgetHosts: ["k2"], sshDialTimeout: "12" });
    assert.deepEqual(s.forgetHosts, ["k2"]);
    assert.equal(s.sshDialTimeout, 12);
    assert.deepEqual(settingsFrom({}).forgetHosts, []);
});

test("every problem is reported at once", () => {
    assert.throws(
        () => settingsFrom({ port: -1, gwips: ["x", "y"], tunnel: 3 }),
        (e: unknown) => e instanceof FouInputError && e.problems.length === 4,
    );
});

test("hosts: aws needs the AWS keys and ignores the local VM network", () => {
    rejects({ hosts: "aws" }, /fou-tunnel:awsOperatorCidr/);
    const s = settingsFrom({ hosts: "aws", awsOperatorCidr: "203.0.113.0/24", gwips: ["198.51.100.7", "10.10.10.2"] });
    assert.equal(s.hosts, "aws");
    assert.equal(s.aws?.operatorCidr, "203.0.113.0/24");
});

test("a topology file replaces the guide's keys; its hosts become the VMs", () => {
    const s = settingsFrom({ topology: "topologies/mesh3.yaml" });
    assert.match(s.topology.source, /mesh3\.yaml$/);
    assert.deepEqual(s.local.vms.map((v) => [v.name, v.address]), [
        ["k1", "198.51.100.151"],
        ["k2", "198.51.100.152"],
        ["k3", "198.51.100.153"],
    ]);
    assert.equal(s.topology.tunnels.length, 3);
});

test("topology errors point at the file, and the guide's keys cannot be mixed in", () => {
    rejects({ topology: "topologies/mesh3.yaml", port: 5555 }, /^fou-tunnel:port cannot be combined with fou-tunnel:topology: set it in the topology file$/);
    rejects({ topology: "no/such.yaml" }, /no\/such\.yaml/);
    rejects({ topology: "" }, /fou-tunnel:topology must be the path of a topology YAML file/);
    // The local network is checked against the file's addresses.
    rejects({ topology: "topologies/mesh3.yaml", localGateway: "192.0.2.1/24" }, /topologies\/mesh3\.yaml:\d+:\d+: hosts\[0\]\.address/);
});
