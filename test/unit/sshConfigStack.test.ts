/**
 * `fou-tunnel:hosts: ssh`, the stack config: a valid stack gives each host's login with every
 * default filled in; the stack's key must be a secret, unencrypted private key (or an agent);
 * the program itself, run under mocks, declares nothing on a bad config and the hosts' SshHost
 * components on a good one.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { utils } from "ssh2";
import { sshCommand } from "../../hosts/ssh";
import { ed25519Pair, JUMP_KEY, K1_KEY, K2_KEY } from "./sshFixtures";
import { ENCRYPTED, ENV, GOOD_K1, GOOD_K2, PRIVATE, PUBLIC, TWO, rejects, resolved, settings, topo, withoutKey } from "./sshConfigFixtures";

const REPO = path.resolve(__dirname, "..", "..");

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
