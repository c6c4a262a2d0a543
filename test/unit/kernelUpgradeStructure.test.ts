/**
 * KernelUpgrade under mocks, in a three-host ssh topology: only hosts that ask get one, of an
 * install and a verify step; HostPrep and the tunnels wait for it; one host reboots at a time;
 * the verify's dials are bounded.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { named, recorded, root, settle, tunnelHostsOf, valueOf } from "./mocks";
import { JUMP_KEY, K1_KEY, K2_KEY } from "./sshFixtures";
import { KEY, SSH } from "./kernelFixtures";
import { y } from "./yamlText";
import { FouTopology } from "../../components/fouTopology";
import { verifyDials } from "../../components/kernelUpgrade";
import { Topology, parseTopology } from "../../topology";

/** Each resource's options as declared (the mocks do not see them). */
const options = new Map<string, pulumi.CustomResourceOptions>();
const recordOptions: pulumi.ResourceTransformation = (t) => {
    options.set(t.name, t.opts);
    return undefined;
};

const MESH = y`
    hosts:
      - name: k1
        ssh: {address: 198.51.100.171, user: admin, hostKey: ${K1_KEY}}
        kernel: {upgrade: true, rebootTimeout: 300}
      - name: k2
        ssh: {address: 198.51.100.172, hostKey: ${K2_KEY}}
        kernel: {upgrade: false}
      - name: k3
        ssh: {address: 198.51.100.173, hostKey: ${JUMP_KEY}}
        kernel:
          upgrade: true
          package: linux-image-6.12-amd64
          repository: "deb http://198.51.100.1:8080/ bookworm-fou main"
          key: |
${KEY.trim().split("\n").map((l) => `                ${l}`).join("\n")}
    tunnels:
      - hosts: [k1, k2]
      - hosts: [k2, k3]
        protocol: sit
        port: 5556
      - hosts: [k1, k3]
`;

let topology: Topology;
let mesh: FouTopology;
before(async () => {
    topology = parseTopology(MESH, "mesh.yaml", SSH);
    const hosts = tunnelHostsOf(topology, (h, t) => ({ ...t, connection: { host: h.ssh!.address, user: h.ssh!.user }, sudo: h.ssh!.sudo }));
    const mine = new pulumi.ComponentResource("test:index:KernelRoot", "kernel-root", {}, { parent: root, transformations: [recordOptions] });
    mesh = new FouTopology("fou", { topology, hosts }, { parent: mine });
    await valueOf(mesh.kernels);
    await valueOf(mesh.checks);
    await settle();
});

test("only hosts with upgrade: true get a KernelUpgrade, named <topology>-<host>-kernel-upgrade, of two steps", () => {
    const ups = recorded.filter((r) => r.type === "fou:index:KernelUpgrade").map((r) => r.name);
    assert.deepEqual(ups, ["fou-k1-kernel-upgrade", "fou-k3-kernel-upgrade"]);
    assert.equal(named("fou-k1-kernel-upgrade").parent, "fou");
    for (const h of ["k1", "k3"]) {
        const kids = recorded.filter((r) => r.parent === `fou-${h}-kernel-upgrade`).map((r) => r.name).sort();
        assert.deepEqual(kids, [`fou-${h}-kernel-upgrade-install`, `fou-${h}-kernel-upgrade-install-probe`, `fou-${h}-kernel-upgrade-verify`]);
    }
    assert.ok(!recorded.some((r) => r.name.startsWith("fou-k2-kernel")));
});

test("the install goes through stdin and sudo; its delete removes only its files; the verify has no delete", () => {
    const install = named("fou-k1-kernel-upgrade-install").inputs;
    assert.equal(install.createLine, "sudo -n /bin/sh -s create");
    assert.equal(install.update, "sudo -n /bin/sh -s create 'drift-probe-fou-k1-kernel-upgrade-install-probe-id'");
    // The tunnels' modules reach the install (kernel-upgrade.sh) as a quoted variable.
    assert.match(install.create, /\n {2}for m in \$fou_modules; do\n/);
    assert.match(install.create, /; fou_modules='fou ipip';/);
    // The delete's own body, after the library its program carries ahead of create and delete.
    const del = install.delete.slice(install.delete.indexOf("\nset -eu\n") + 1);
    assert.match(del, /^set -eu\nrm -f '\/var\/lib\/fou-tunnel\/fou-tunnel\.unit\/fou-k1-kernel-upgrade-install\.kernel' '\/var\/lib\/fou-tunnel\/fou-tunnel\.unit\/fou-k1-kernel-upgrade-install\.log'\n/);
    assert.doesNotMatch(del, /reboot|apt-get|yum|dnf|grub/);
    assert.match(named("fou-k3-kernel-upgrade-install").inputs.create, /; fou_modules='fou sit ipip';/);
    // k3's repository and key reach its script; the key is dearmored for signed-by.
    const k3 = named("fou-k3-kernel-upgrade-install").inputs.create;
    assert.match(k3, /\nfou_apt_gpg_line='deb \[signed-by=\/etc\/apt\/keyrings\/fou-tunnel-kernel\.gpg\] http:\/\/198\.51\.100\.1:8080\/ bookworm-fou main'\n/);
    assert.ok(k3.includes(KEY.trim()));
    const verify = named("fou-k1-kernel-upgrade-verify").inputs;
    assert.equal(verify.deleteLine, undefined);
    assert.equal(verify.delete, undefined);
    assert.match(verify.create, /kernelBefore=/);
    // The probe looks at fou on the running kernel.
    assert.match(named("fou-k1-kernel-upgrade-install-probe").inputs.check, /fou_missing/);
});

test("the verify re-runs with the install: its triggers hold the install's stdout", () => {
    const triggers = named("fou-k1-kernel-upgrade-verify").inputs.triggers as string[];
    assert.ok(triggers.some((t) => /instance=fou-k1-kernel-upgrade-install$/.test(t)), JSON.stringify(triggers));
    assert.deepEqual(named("fou-k1-kernel-upgrade-verify").dependsOn.filter((d) => d.includes("kernel")), ["fou-k1-kernel-upgrade-install"]);
});

test("HostPrep and everything else on an upgraded host wait for its verify", () => {
    assert.deepEqual(named("fou-k1-prep").dependsOn, ["fou-k1-kernel-upgrade"]);
    assert.ok(named("fou-k1-prep-kernel").dependsOn.includes("fou-k1-kernel-upgrade-verify"));
    assert.ok(named("fou-k3-prep-kernel").dependsOn.includes("fou-k3-kernel-upgrade-verify"));
    assert.ok(named("fou-k1-k2-k1-link").dependsOn.includes("fou-k1-kernel-upgrade-verify"));
    assert.deepEqual(named("fou-k2-prep").dependsOn, []);
    assert.ok(!named("fou-k2-prep-kernel").dependsOn.some((d) => d.includes("kernel-upgrade")));
});

test("upgrades are chained: one host reboots at a time", () => {
    assert.deepEqual(named("fou-k1-kernel-upgrade-install").dependsOn, []);
    assert.deepEqual(named("fou-k3-kernel-upgrade-install").dependsOn, ["fou-k1-kernel-upgrade-verify"]);
});

test("the verify's connection has bounded dials and a hard create timeout", async () => {
    assert.deepEqual(verifyDials(300), { perDialTimeout: 10, dialErrorLimit: 65, createTimeout: "420s" });
    assert.deepEqual(verifyDials(600), { perDialTimeout: 10, dialErrorLimit: 125, createTimeout: "720s" });
    // The connection is a secret: the mocks see it wrapped.
    const connection = (name: string) => {
        const c = named(name).inputs.connection;
        return c.value ?? c;
    };
    const conn = connection("fou-k1-kernel-upgrade-verify");
    assert.equal(conn.perDialTimeout, 10);
    assert.equal(conn.dialErrorLimit, 65);
    assert.equal(conn.host, "198.51.100.171");
    assert.equal(options.get("fou-k1-kernel-upgrade-verify")?.customTimeouts?.create, "420s");
    assert.equal(connection("fou-k3-kernel-upgrade-verify").dialErrorLimit, 125);
    // The install's own dials are the host's (here the command SDK's default of 10).
    assert.equal(connection("fou-k1-kernel-upgrade-install").dialErrorLimit, 10);
    assert.equal(options.get("fou-k1-kernel-upgrade-install")?.customTimeouts?.create, "30m");
});

test("kernels: before and after per upgraded host", async () => {
    assert.deepEqual(Object.keys(await valueOf(mesh.kernels)), ["k1", "k3"]);
    assert.deepEqual(Object.keys(mesh.kernelUpgrades), ["k1", "k3"]);
});

test("a topology without kernel blocks declares no KernelUpgrade", async () => {
    const t = parseTopology(MESH.replace(/\n\s*kernel:[\s\S]*?(?=\n {2}- name|\ntunnels)/g, ""), "plain.yaml", SSH);
    assert.ok(t.hosts.every((h) => h.kernel === undefined));
    const hosts = Object.fromEntries(t.hosts.map((h) => [h.name, { name: h.name, underlayAddress: h.address!, device: "eth0", connection: { host: h.ssh!.address } }]));
    const plain = new FouTopology("plain", { topology: t, hosts }, { parent: root });
    assert.deepEqual(await valueOf(plain.kernels), {});
    await settle();
    assert.ok(!recorded.some((r) => r.name.startsWith("plain-") && r.name.includes("kernel-upgrade")));
});
