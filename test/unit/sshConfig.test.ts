/**
 * `fou-tunnel:hosts: ssh`: the stack config and the topology file's ssh hosts. A valid file gives
 * each host's login with every default filled in; every invalid value is rejected before any
 * resource, naming the config key or the file:line:col and path, with the fix (ssh-keyscan for
 * a missing host key). The program itself, run under mocks, declares nothing on a bad config and
 * the hosts' SshHost components on a good one.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { utils } from "ssh2";
import { parseSettings } from "../../config";
import { SshEnvironment } from "../../hosts/sshConfig";
import { sshCommand } from "../../hosts/ssh";
import { FouInputError } from "../../lib/validate";
import * as pulumi from "@pulumi/pulumi";
import { ed25519Pair, JUMP_KEY, K1_KEY, K2_KEY } from "./sshFixtures";

const REPO = path.resolve(__dirname, "..", "..");
const dir = mkdtempSync(path.join(tmpdir(), "fou-sshcfg-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const PRIVATE = ed25519Pair().private;
const ENCRYPTED = ed25519Pair("pw").private;
const PUBLIC = ed25519Pair().public;

/** A secret key, as `pulumi config set --secret` leaves it. */
const ENV: SshEnvironment = { isSecret: () => true, isSocket: (p) => p === "/run/agent.sock" };

/** A host's settings without its key (an Output, compared on its own). */
function withoutKey<T extends { privateKey?: unknown }>(h: T): Omit<T, "privateKey"> {
    const { privateKey: _, ...rest } = h;
    return rest;
}

function resolved<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

let files = 0;
function topo(text: string): string {
    const file = path.join(dir, `t${files++}.yaml`);
    writeFileSync(file, text);
    return file;
}

const TWO = (k1: string, k2: string, tunnels = "tunnels:\n  - hosts: [k1, k2]\n") => `hosts:\n  - name: k1\n${k1}  - name: k2\n${k2}${tunnels}`;
const GOOD_K1 = `    ssh: {address: 198.51.100.161, hostKey: ${K1_KEY} root@k1}\n`;
const GOOD_K2 = `    ssh:\n      address: 198.51.100.162\n      user: deploy\n      hostKey: ${K2_KEY}\n`;

function settings(cfg: Record<string, unknown>, env: SshEnvironment = ENV) {
    return parseSettings((k) => cfg[k], "fou-tunnel", env);
}

/** The config (with a topology file of `text`) is rejected; every expected message is among the problems. */
function rejects(cfg: Record<string, unknown>, text: string | undefined, expected: (string | RegExp)[], env: SshEnvironment = ENV): string[] {
    const file = text === undefined ? undefined : topo(text);
    const full = { hosts: "ssh", sshPrivateKey: PRIVATE, ...(file ? { topology: file } : {}), ...cfg };
    let problems: string[] = [];
    assert.throws(
        () => settings(full, env),
        (e: unknown) => {
            assert.ok(e instanceof FouInputError, String(e));
            problems = e.problems.map((p) => (file ? p.split(file).join("t.yaml") : p));
            return true;
        },
    );
    for (const want of expected) {
        assert.ok(
            problems.some((p) => (typeof want === "string" ? p === want : want.test(p))),
            `expected ${want}\n in\n${problems.join("\n")}`,
        );
    }
    return problems;
}

test("the tests' keys: ssh2 reads back every pair ed25519Pair gives, with and without a passphrase", () => {
    // 1,024 draws meet ssh2's one-in-256 malformed pair about four times (mscdex/ssh2#1390).
    for (let i = 0; i < 1024; i++) {
        const pair = ed25519Pair();
        const key = utils.parseKey(pair.private);
        assert.ok(!(key instanceof Error) && !Array.isArray(key) && key.getPublicSSH().length === 51, `pair ${i}: ${String(key)}`);
        assert.ok(!(utils.parseKey(pair.public) instanceof Error), `pair ${i}: public half`);
    }
    assert.ok(!(utils.parseKey(ed25519Pair("pw").private, "pw") instanceof Error));
});

test("a valid ssh stack: each host's login with its defaults, the key (a secret Output), the underlay address", async () => {
    const s = settings({ hosts: "ssh", topology: topo(TWO(GOOD_K1, GOOD_K2)), sshPrivateKey: PRIVATE });
    assert.equal(s.hosts, "ssh");
    const dials = { dialErrorLimit: 5, perDialTimeout: 10 };
    assert.deepEqual(s.ssh?.hosts.map(withoutKey), [
        { name: "k1", address: "198.51.100.161", port: 22, user: "root", hostKey: K1_KEY, dials, sudo: false, underlayAddress: "198.51.100.161" },
        { name: "k2", address: "198.51.100.162", port: 22, user: "deploy", hostKey: K2_KEY, dials, sudo: true, underlayAddress: "198.51.100.162" },
    ]);
    // Every host logs in with the stack's key, held as a secret Output, never as text.
    for (const h of s.ssh!.hosts) {
        assert.ok(pulumi.Output.isInstance(h.privateKey), "the key is an Output");
        assert.equal(await pulumi.isSecret(h.privateKey), true);
        assert.equal(await resolved(h.privateKey), PRIVATE);
    }
    assert.deepEqual(s.topology.tunnels[0].ends.map((e) => [e.host, e.gwip, e.ifname]), [
        ["k1", "10.10.10.1", "ftok2"],
        ["k2", "10.10.10.2", "ftok1"],
    ]);
});

test("a jump host, another port, a DNS name with its underlay address, a device; an agent instead of a key", () => {
    const k1 = [
        "    ssh:",
        "      address: web1.example.com",
        "      port: 2222",
        "      user: ops",
        `      hostKey: "[web1.example.com]:2222 ${K1_KEY}"`,
        "      proxy:",
        "        address: 192.0.2.10",
        `        hostKey: ${JUMP_KEY}`,
        "    underlayAddress: 10.0.0.11",
        "    device: ens5",
        "",
    ].join("\n");
    const s = settings({ hosts: "ssh", topology: topo(TWO(k1, GOOD_K2)), sshAgentSocket: "/run/agent.sock", sshDialTimeout: 30 });
    const h = s.ssh!.hosts[0];
    assert.deepEqual(h, {
        name: "k1",
        address: "web1.example.com",
        port: 2222,
        user: "ops",
        hostKey: K1_KEY,
        agentSocketPath: "/run/agent.sock",
        // The stack's dial timeout, for the host and its jump host alike.
        dials: { dialErrorLimit: 5, perDialTimeout: 30 },
        sudo: true,
        // The jump host's user and agent default to the host's.
        proxy: { address: "192.0.2.10", port: 22, user: "ops", hostKey: JUMP_KEY, agentSocketPath: "/run/agent.sock" },
        underlayAddress: "10.0.0.11",
        device: "ens5",
    });
    assert.equal(sshCommand(h), "ssh -p 2222 -J ops@192.0.2.10 ops@web1.example.com");
    // Only an agent in the environment: that is a way to log in too.
    assert.equal(settings({ hosts: "ssh", topology: topo(TWO(GOOD_K1, GOOD_K2)) }, { sshAuthSock: "/tmp/agent" }).ssh?.hosts.length, 2);
});

test("the stack's keys: ssh needs a topology file; the private key must be a secret, unencrypted, private", () => {
    rejects({}, undefined, [/^fou-tunnel:hosts ssh needs fou-tunnel:topology: a topology file whose hosts say how to log in to each machine/]);
    rejects({ hosts: "gcp" }, undefined, ['fou-tunnel:hosts must be "local", "aws" or "ssh" (got "gcp")']);
    const file = TWO(GOOD_K1, GOOD_K2);
    rejects({}, file, ["fou-tunnel:sshPrivateKey is stored in plain text in the stack's config file: set it as a secret, `pulumi config set --secret sshPrivateKey < KEYFILE`"], { ...ENV, isSecret: () => false });
    rejects({ sshPrivateKey: ENCRYPTED }, file, [/^fou-tunnel:sshPrivateKey is encrypted with a passphrase: load it into an SSH agent \(`ssh-add KEY`\)/]);
    rejects({ sshPrivateKey: PUBLIC }, file, ["fou-tunnel:sshPrivateKey is a public key; set the private key (the file without .pub)"]);
    rejects({ sshPrivateKey: "hunter2" }, file, [/^fou-tunnel:sshPrivateKey is not an SSH private key \(OpenSSH or PEM\)/]);
    rejects({ sshPrivateKey: "PuTTY-User-Key-File-3: ssh-ed25519\n" }, file, [/^fou-tunnel:sshPrivateKey is a PuTTY key; convert it with `puttygen/]);
    const noKey = rejects({ sshPrivateKey: undefined }, file, [/^no way to log in to the hosts: set fou-tunnel:sshPrivateKey .* or fou-tunnel:sshAgentSocket, or run pulumi with an SSH agent \(SSH_AUTH_SOCK\)$/]);
    // The key itself never shows in a message.
    assert.ok(!rejects({ sshPrivateKey: PRIVATE.replace("PRIVATE KEY", "PRIVATE KEX") }, file, [/sshPrivateKey/]).some((p) => p.includes(PRIVATE.slice(40, 80))));
    assert.equal(noKey.length, 1);
    rejects({ sshAgentSocket: "agent.sock" }, file, ['fou-tunnel:sshAgentSocket must be the absolute path of an SSH agent\'s socket, like $SSH_AUTH_SOCK (got "agent.sock")']);
    rejects({ sshAgentSocket: "/run/none.sock" }, file, [/^fou-tunnel:sshAgentSocket: there is no socket at \/run\/none\.sock; start an agent/]);
    // On other host kinds the stack makes the key.
    assert.throws(() => settings({ sshPrivateKey: PRIVATE }), /fou-tunnel:sshPrivateKey applies to fou-tunnel:hosts ssh only; local hosts are reached with a key the stack makes/);
});

test("a missing host key: required, with the ssh-keyscan command that gets it (through the jump host, behind one)", () => {
    rejects({}, TWO("    ssh: {address: 198.51.100.161}\n", GOOD_K2), [
        "t.yaml:3:10: hosts[0].ssh.hostKey: required: the host's SSH public key, pinned so that no other machine can pose as it; get it with `ssh-keyscan -t ed25519 198.51.100.161` " +
            "and compare its fingerprint (`ssh-keygen -lf -`) with the one the host shows on its console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)",
    ]);
    rejects({}, TWO("    ssh: {address: 198.51.100.161, port: 2222}\n", GOOD_K2), [/hosts\[0\]\.ssh\.hostKey: required: .*`ssh-keyscan -t ed25519 -p 2222 198\.51\.100\.161`/]);
    rejects({}, TWO(`    ssh: {address: 10.0.0.11, proxy: {address: 192.0.2.10, port: 2200, user: jump, hostKey: ${JUMP_KEY}}}\n`, GOOD_K2), [
        /^t\.yaml:3:10: hosts\[0\]\.ssh\.hostKey: required: .*get it with `ssh -p 2200 jump@192\.0\.2\.10 ssh-keyscan -t ed25519 10\.0\.0\.11`/,
    ]);
});

test("a malformed host key: damaged, of no key type, a private key, several lines, not a string", () => {
    const k1 = (key: string) => TWO(`    ssh:\n      address: 198.51.100.161\n      hostKey: ${key}\n`, GOOD_K2);
    rejects({}, k1(K1_KEY.slice(0, 60)), [/^t\.yaml:5:16: hosts\[0\]\.ssh\.hostKey: is not a valid ssh-ed25519 public key \(the base64 part is damaged or of another type; got "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\.\.\."\); get it with `ssh-keyscan/]);
    rejects({}, k1(K1_KEY.replace("ssh-ed25519", "ssh-rsa")), [/hosts\[0\]\.ssh\.hostKey: is not a valid ssh-rsa public key/]);
    rejects({}, k1("AAAAC3NzaC1lZDI1NTE5"), [/hosts\[0\]\.ssh\.hostKey: must start with a host key type \(ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-rsa\)/]);
    rejects({}, k1(`|\n        -----BEGIN OPENSSH PRIVATE KEY-----\n        abc\n        -----END OPENSSH PRIVATE KEY-----`), [/hosts\[0\]\.ssh\.hostKey: is a private key; pin the host's public key/]);
    rejects({}, k1(`|\n        ${K1_KEY}\n        ${K2_KEY}`), [/hosts\[0\]\.ssh\.hostKey: has 2 lines; give one key, like the ed25519 line of ssh-keyscan/]);
    rejects({}, k1("[a, b]"), [/hosts\[0\]\.ssh\.hostKey: must be a public key line like "ssh-ed25519 AAAA…" \(got a list of 2\)/]);
});

test("address, port and user: checked, typed", () => {
    const k1 = (ssh: string) => TWO(`    ssh: {${ssh}, hostKey: ${K1_KEY}}\n`, GOOD_K2);
    rejects({}, k1("address: 198.51.100.161, port: 70000"), [/^t\.yaml:3:42: hosts\[0\]\.ssh\.port: must be a TCP port number from 1 to 65535 \(got 70000\)$/]);
    rejects({}, k1('address: 198.51.100.161, port: "22"'), [/hosts\[0\]\.ssh\.port: must be a TCP port number from 1 to 65535 \(got "22"\)$/]);
    rejects({}, k1('address: 198.51.100.161, user: "root; reboot"'), [/^t\.yaml:3:42: hosts\[0\]\.ssh\.user: must be a user name of 1-32 letters, digits/]);
    rejects({}, k1("address: 198.51.100.400"), [/^t\.yaml:3:20: hosts\[0\]\.ssh\.address: must be an IP address or a DNS name like host\.example\.com \(got "198\.51\.100\.400"\)$/]);
    rejects({}, k1("port: 22"), [/^t\.yaml:3:10: hosts\[0\]\.ssh\.address: required: the host's IP address or DNS name, like 198\.51\.100\.151$/]);
    rejects({}, k1("address: 127.0.0.1"), [/hosts\[0\]\.ssh\.address: 127\.0\.0\.1 is not a unicast host address; it is the default underlay address: set underlayAddress$/]);
});

test("sudo: a user other than root needs it; a bool", () => {
    const k2 = (extra: string) => TWO(GOOD_K1, GOOD_K2 + extra);
    rejects({}, k2("      sudo: false\n"), [
        "t.yaml:9:13: hosts[1].ssh.sudo: is false, but user deploy is not root: the steps need root (modprobe, sysctl, ip, files in /etc); remove sudo: false, or log in as root",
    ]);
    rejects({}, k2("      sudo: yes\n"), [/^t\.yaml:9:13: hosts\[1\]\.ssh\.sudo: must be true or false \(got "yes"; YAML 1\.2 reads yes as a string\)$/]);
    // root with sudo is allowed (it runs the steps through sudo, as asked).
    assert.equal(settings({ hosts: "ssh", sshPrivateKey: PRIVATE, topology: topo(TWO(`    ssh: {address: 198.51.100.161, hostKey: ${K1_KEY}, sudo: true}\n`, GOOD_K2)) }).ssh?.hosts[0].sudo, true);
});

test("the jump host: an address and a host key of its own, no proxy or sudo of its own, not the host itself", () => {
    const k1 = (proxy: string) => TWO(`    ssh:\n      address: 10.0.0.11\n      hostKey: ${K1_KEY}\n      proxy: ${proxy}\n`, GOOD_K2);
    rejects({}, k1(`{hostKey: ${JUMP_KEY}}`), [/^t\.yaml:6:14: hosts\[0\]\.ssh\.proxy\.address: required: the jump host's IP address or DNS name, like 192\.0\.2\.10$/]);
    rejects({}, k1("{address: 192.0.2.10}"), [/^t\.yaml:6:14: hosts\[0\]\.ssh\.proxy\.hostKey: required: the jump host's SSH public key, .*`ssh-keyscan -t ed25519 192\.0\.2\.10`/]);
    rejects({}, k1(`{address: 192.0.2.10, port: 0, hostKey: ${JUMP_KEY}}`), [/hosts\[0\]\.ssh\.proxy\.port: must be a TCP port number from 1 to 65535 \(got 0\)$/]);
    rejects({}, k1(`{address: 192.0.2.10, hostKey: ${JUMP_KEY}, proxy: {address: 192.0.2.11}}`), [
        /hosts\[0\]\.ssh\.proxy\.proxy: a jump host cannot have a proxy of its own: the connection goes through one jump host at most$/,
    ]);
    rejects({}, k1(`{address: 192.0.2.10, hostKey: ${JUMP_KEY}, sudo: true}`), [/hosts\[0\]\.ssh\.proxy\.sudo: sudo applies to the host's steps; the jump host only forwards the connection$/]);
    rejects({}, k1("192.0.2.10"), [/^t\.yaml:6:14: hosts\[0\]\.ssh\.proxy: must be a mapping like \{address: 192\.0\.2\.10, hostKey: ssh-ed25519 AAAA…\}: the jump host \(got "192\.0\.2\.10"\)$/]);
    rejects({}, k1(`{address: 10.0.0.11, hostKey: ${JUMP_KEY}}`), [/hosts\[0\]\.ssh\.proxy: is the host itself \(10\.0\.0\.11 port 22\); a jump host is another machine$/]);
});

test("each ssh host says how to log in; secrets and other kinds' keys have no place in the file", () => {
    rejects({}, TWO("", GOOD_K2), [/^t\.yaml:2:5: hosts\[0\]\.ssh: required on ssh stacks: how to log in, like \{address: 198\.51\.100\.151, hostKey: ssh-ed25519 AAAA…\}$/]);
    rejects({}, TWO("    ssh: 198.51.100.161\n", GOOD_K2), [/^t\.yaml:3:10: hosts\[0\]\.ssh: must be a mapping like/]);
    rejects({}, TWO(`    ssh: {address: 198.51.100.161, hostKey: ${K1_KEY}, privateKey: abc}\n`, GOOD_K2), [
        /hosts\[0\]\.ssh\.privateKey: not allowed in a topology file: keys and passwords are secrets; set the private key with `pulumi config set --secret fou-tunnel:sshPrivateKey < KEYFILE`/,
    ]);
    rejects({}, TWO(`    ssh: {address: 198.51.100.161, hostkey: ${K1_KEY}}\n`, GOOD_K2), [/hosts\[0\]\.ssh\.hostkey: unknown key \(did you mean hostKey\?\); ssh keys are address, port, user, hostKey, sudo, proxy$/]);
    rejects({}, TWO(`    address: 198.51.100.161\n${GOOD_K1}`, GOOD_K2), [/^t\.yaml:3:5: hosts\[0\]\.address: not allowed for ssh hosts: the login address is ssh\.address/]);
    rejects({}, TWO(`    fou: false\n${GOOD_K1}`, GOOD_K2), [/hosts\[0\]\.fou: not allowed for ssh hosts: only local VMs can be booted with fou made unusable$/]);
    // And the other way round: a local stack's host with an ssh block.
    assert.throws(
        () => settings({ topology: topo(TWO(GOOD_K1, GOOD_K2)) }),
        /hosts\[0\]\.ssh: only for ssh hosts \(fou-tunnel:hosts: ssh\): local VMs are reached with the stack's own key, on the address it gives them/,
    );
});

test("underlay address and device: IPv4, given when the SSH address is a name, unique; a valid device name", () => {
    rejects({}, TWO(`    ssh: {address: web1.example.com, hostKey: ${K1_KEY}}\n`, GOOD_K2), [
        "t.yaml:2:5: hosts[0].underlayAddress: required when ssh.address is a DNS name (web1.example.com): the IPv4 address the host's peers send the tunnel to",
    ]);
    rejects({}, TWO(`${GOOD_K1}    underlayAddress: fd00::1\n`, GOOD_K2), [/^t\.yaml:4:22: hosts\[0\]\.underlayAddress: must be an IPv4 address like 10\.10\.10\.1 \(got "fd00::1"\)$/]);
    rejects({}, TWO(GOOD_K1, `${GOOD_K2}    underlayAddress: 198.51.100.161\n`), [
        /^t\.yaml:9:22: hosts\[1\]\.underlayAddress: 198\.51\.100\.161 is already the underlay address of k1 \(line 3\); each host needs its own$/,
    ]);
    rejects({}, TWO(GOOD_K1, `    ssh: {address: 198.51.100.161, hostKey: ${K2_KEY}}\n`), [
        /^t\.yaml:5:20: hosts\[1\]\.ssh\.address: k1 \(line 3\) already logs in at 198\.51\.100\.161 port 22; the hosts of a file are different machines$/,
    ]);
    rejects({}, TWO(`${GOOD_K1}    device: "eth0; reboot"\n`, GOOD_K2), [/^t\.yaml:4:13: hosts\[0\]\.device: "eth0; reboot" may only contain letters, digits/]);
});

test("GWIPs, GWIP pools and routes keep clear of the machines' addresses", () => {
    rejects({}, TWO(GOOD_K1, GOOD_K2, "tunnels:\n  - hosts: [k1, k2]\n    gwips: [198.51.100.162, 10.10.10.2]\n"), [
        /^t\.yaml:11:13: tunnels\[0\]\.gwips\[0\]: 198\.51\.100\.162 is the underlay address of k2 \(line 4\); a GWIP must not be a machine's own address$/,
    ]);
    rejects({}, `gwipPool: 198.51.100.160/28\n${TWO(GOOD_K1, GOOD_K2)}`, [
        /^t\.yaml:1:11: gwipPool: 198\.51\.100\.160\/28 contains 198\.51\.100\.161, the underlay address of k1 \(line 3\); GWIPs must not be the machines' own addresses$/,
    ]);
    rejects({}, TWO(GOOD_K1, GOOD_K2, "tunnels:\n  - hosts: [k1, k2]\n    routes: {k1: [198.51.100.128/25]}\n"), [
        /^t\.yaml:11:19: tunnels\[0\]\.routes\.k1\[0\]: 198\.51\.100\.128\/25 contains 198\.51\.100\.161, the underlay address of k1 \(line 2\); routing it into the tunnel would cut the SSH path or loop the tunnel's own packets$/,
    ]);
});

/** Runs the program (index.ts) under mocks with this stack config; what it declared, and its error. */
function runProgram(config: Record<string, string>, secret: string[]): { error?: string; resources: { type: string; name: string; inputs: Record<string, unknown> }[] } {
    const probe = [
        'const pulumi = require("@pulumi/pulumi");',
        "const resources = [];",
        "pulumi.runtime.setMocks({",
        "  newResource: (a) => {",
        "    resources.push({ type: a.type, name: a.name, inputs: a.inputs });",
        "    const c = String(a.inputs.create || '') + String(a.inputs.stdin || '');",
        "    const stdout = c.includes('tcpdump') ? JSON.stringify({ from: 'a', to: 'b', sent: 3, received: 3, udpToPeer: 3, udpFromPeer: 3, sample: 'x', measuredAt: 'now' }) : a.name.endsWith('-reachable') ? 'device=eth0' : 'mtu=1472\\ninstance=1';",
        "    return { id: a.name + '-id', state: { ...a.inputs, stdout, stderr: '' } };",
        "  },",
        "  call: (a) => a.inputs,",
        '}, "fou-tunnel", "unit", false);',
        "let error;",
        'try { require("./index.ts"); } catch (e) { error = e.message; }',
        "setTimeout(() => console.log(JSON.stringify({ error, resources })), 1500);",
    ].join("\n");
    const out = execFileSync(process.execPath, ["--require", "ts-node/register", "-e", probe], {
        cwd: REPO,
        encoding: "utf8",
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true", PULUMI_CONFIG: JSON.stringify(config), PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(secret), SSH_AUTH_SOCK: "" },
    });
    return JSON.parse(out.trim().split("\n").pop()!);
}

test("the program: a bad ssh config stops it before any resource; a good one declares an SshHost per host", () => {
    const bad = runProgram(
        { "fou-tunnel:hosts": "ssh", "fou-tunnel:topology": topo(TWO("    ssh: {address: 198.51.100.161}\n", GOOD_K2)), "fou-tunnel:sshPrivateKey": PRIVATE },
        ["fou-tunnel:sshPrivateKey"],
    );
    assert.match(bad.error ?? "", /hosts\[0\]\.ssh\.hostKey: required: .*ssh-keyscan -t ed25519 198\.51\.100\.161/);
    assert.deepEqual(bad.resources, []);
    const plain = runProgram({ "fou-tunnel:hosts": "ssh", "fou-tunnel:topology": topo(TWO(GOOD_K1, GOOD_K2)), "fou-tunnel:sshPrivateKey": PRIVATE }, []);
    assert.match(plain.error ?? "", /fou-tunnel:sshPrivateKey is stored in plain text/);
    assert.deepEqual(plain.resources, []);

    const good = runProgram({ "fou-tunnel:hosts": "ssh", "fou-tunnel:topology": topo(TWO(GOOD_K1, GOOD_K2)), "fou-tunnel:sshPrivateKey": PRIVATE }, ["fou-tunnel:sshPrivateKey"]);
    assert.equal(good.error, undefined);
    const names = good.resources.map((r) => `${r.type} ${r.name}`);
    for (const n of ["fou:ssh:SshHosts ssh", "fou:index:SshHost ssh-k1", "fou:index:SshHost ssh-k2", "command:remote:Command ssh-k1-reachable", "command:remote:Command ssh-k2-reachable"]) {
        assert.ok(names.includes(n), `${n} in ${names.join(", ")}`);
    }
    // No VMs, no key made by the stack: the machines and the key are the user's.
    assert.ok(!names.some((n) => /LocalVm|local:Command|tls:/.test(n)), names.join(", "));
    const kernel = good.resources.find((r) => r.name.endsWith("k2-prep-kernel"));
    assert.ok(kernel, names.join(", "));
    assert.equal(kernel.inputs.create, "sudo -n /bin/sh -s create");
    assert.equal(good.resources.find((r) => r.name.endsWith("k1-prep-kernel"))!.inputs.create, "/bin/sh -s create");
});
