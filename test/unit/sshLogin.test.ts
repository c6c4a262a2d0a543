/**
 * The SSH login model (lib/sshLogin.ts): its defaults, every check with the message it gives, a
 * hostile value staying data in a message, and the private key held only as a secret: from the
 * stack config to the connection the mocked engine records.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { recorded, root, settle, valueOf } from "./mocks";
import { parseSettings } from "../../config";
import { SshHost } from "../../components/sshHost";
import {
    NOT_KNOWN,
    SSH_DIALS,
    SshLoginDraft,
    checkAgentSocket,
    resolveSshLogin,
    sshConnection,
    sshLoginDefaults,
    sshLoginProblems,
    sudoByDefault,
} from "../../lib/sshLogin";
import { readPrivateKey } from "../../hosts/sshConfig";
import { ed25519Pair, JUMP_KEY, K1_KEY, K2_KEY } from "./sshFixtures";

const PRIVATE = ed25519Pair().private;
const key = (f: string) => `login: ${f}`;
const problems = (d: SshLoginDraft) => sshLoginProblems(d, key);

test("defaults: port 22, user root, SSH_DIALS; a jump host gets port 22 and the host's user, key and agent", async () => {
    assert.deepEqual(SSH_DIALS, { dialErrorLimit: 5, perDialTimeout: 10 });
    assert.deepEqual(sshLoginDefaults<string>({ address: "198.51.100.161", hostKey: K1_KEY }), {
        address: "198.51.100.161",
        hostKey: K1_KEY,
        port: 22,
        user: "root",
        dials: { dialErrorLimit: 5, perDialTimeout: 10 },
    });
    const full = sshLoginDefaults<string>({
        address: "10.0.0.11",
        user: "ops",
        hostKey: K1_KEY,
        privateKey: "KEY",
        agentSocketPath: "/run/agent.sock",
        dials: { perDialTimeout: 30 },
        proxy: { address: "192.0.2.10", hostKey: JUMP_KEY },
    });
    assert.deepEqual(full.dials, { dialErrorLimit: 5, perDialTimeout: 30 });
    assert.deepEqual(full.proxy, { address: "192.0.2.10", hostKey: JUMP_KEY, port: 22, user: "ops", privateKey: "KEY", agentSocketPath: "/run/agent.sock" });
    // What the jump host says itself is kept; filling defaults twice changes nothing.
    const own = sshLoginDefaults<string>({ ...full, proxy: { address: "192.0.2.10", port: 2200, user: "jump", hostKey: JUMP_KEY, privateKey: "JUMPKEY" } });
    assert.deepEqual([own.proxy?.port, own.proxy?.user, own.proxy?.privateKey], [2200, "jump", "JUMPKEY"]);
    assert.deepEqual(sshLoginDefaults(full), full);
    assert.deepEqual([sudoByDefault(undefined), sudoByDefault("root"), sudoByDefault("deploy")], [false, false, true]);
});

test("a valid login has no problems; values not known yet are checked later, not now", () => {
    assert.deepEqual(problems({ address: "web1.example.com", port: 2222, user: "ops", hostKey: `${K1_KEY} root@k1`, dials: { perDialTimeout: 30 } }), []);
    assert.deepEqual(problems({ address: NOT_KNOWN, port: NOT_KNOWN, hostKey: NOT_KNOWN, proxy: { address: NOT_KNOWN, hostKey: JUMP_KEY } }), []);
});

test("each check of a login, with its message", () => {
    const ok = { address: "198.51.100.161", hostKey: K1_KEY };
    const only = (d: SshLoginDraft, want: RegExp) => {
        const found = problems(d);
        assert.equal(found.length, 1, found.join("\n"));
        assert.match(found[0], want);
    };
    only({ hostKey: K1_KEY }, /^login: address is required: the host's IP address or DNS name, like 198\.51\.100\.151$/);
    only({ ...ok, address: "198.51.100.400" }, /^login: address must be an IP address or a DNS name like host\.example\.com \(got "198\.51\.100\.400"\)$/);
    only({ ...ok, port: 0 }, /^login: port must be a TCP port number from 1 to 65535 \(got 0\)$/);
    only({ ...ok, port: "22" }, /^login: port must be a TCP port number from 1 to 65535 \(got "22"\)$/);
    only({ ...ok, user: "9lives" }, /^login: user must be a user name of 1-32 letters/);
    only({ address: "198.51.100.161", port: 2222 }, /^login: hostKey is required: the host's SSH public key, pinned .*`ssh-keyscan -t ed25519 -p 2222 198\.51\.100\.161`/);
    only({ ...ok, hostKey: "" }, /^login: hostKey is required: /);
    only({ ...ok, hostKey: PRIVATE }, /^login: hostKey is a private key; pin the host's public key/);
    only({ ...ok, hostKey: `${K1_KEY}\n${K2_KEY}` }, /^login: hostKey has 2 lines; give one key/);
    only({ ...ok, hostKey: K1_KEY.slice(0, 60) }, /^login: hostKey is not a valid ssh-ed25519 public key/);
    only({ ...ok, dials: { dialErrorLimit: 5000 } }, /^login: dials\.dialErrorLimit must be an integer from -1 to 1000 \(got 5000\)$/);
    only({ ...ok, dials: { perDialTimeout: 0 } }, /^login: dials\.perDialTimeout must be an integer from 1 to 300 \(got 0\)$/);
    // The jump host: its own fields, named under proxy; a missing host key's hint runs through it.
    only({ ...ok, proxy: { hostKey: JUMP_KEY } }, /^login: proxy\.address is required: the jump host's IP address or DNS name, like 192\.0\.2\.10$/);
    only({ ...ok, proxy: { address: "192.0.2.10", port: 2200 } }, /^login: proxy\.hostKey is required: the jump host's SSH public key, pinned .*`ssh-keyscan -t ed25519 -p 2200 192\.0\.2\.10`/);
    only({ ...ok, proxy: { address: "192.0.2.10", port: 70000, hostKey: JUMP_KEY } }, /^login: proxy\.port must be a TCP port number from 1 to 65535 \(got 70000\)$/);
    only({ ...ok, proxy: { address: "198.51.100.161", hostKey: JUMP_KEY } }, /^login: proxy is the host itself \(198\.51\.100\.161 port 22\); a jump host is another machine$/);
    only({ address: "10.0.0.11", user: "ops", proxy: { address: "192.0.2.10", port: 2200, hostKey: JUMP_KEY } }, /`ssh -p 2200 ops@192\.0\.2\.10 ssh-keyscan -t ed25519 10\.0\.0\.11`/);
    // Every problem at once, in the order of the fields.
    assert.deepEqual(
        problems({ user: "-x", port: 0, proxy: { address: "bad address" } }).map((p) => p.split(" ").slice(0, 2).join(" ")),
        ["login: user", "login: address", "login: port", "login: hostKey", "login: proxy.address", "login: proxy.hostKey"],
    );
});

test("hostile values stay data: rejected, quoted in the message, never run", () => {
    for (const [field, value] of [
        ["address", "198.51.100.161; reboot"],
        ["address", "$(touch /tmp/fou-pwned-login)"],
        ["address", "web1.example.com\nProxyCommand sh"],
        ["user", "root; reboot"],
        ["user", "`id`"],
        ["hostKey", `${K1_KEY}\nProxyCommand sh -c reboot`],
    ] as const) {
        const found = problems({ address: "198.51.100.161", hostKey: K1_KEY, [field]: value });
        assert.equal(found.length, 1, `${field} ${JSON.stringify(value)}: ${found.join("\n")}`);
        assert.ok(found[0].startsWith(`login: ${field} `), found[0]);
        assert.ok(!found[0].includes("\n"), `a newline of the value is escaped: ${found[0]}`);
    }
    // A private key where the host key goes is named, not echoed.
    const [msg] = problems({ address: "198.51.100.161", hostKey: PRIVATE });
    assert.ok(!msg.includes(PRIVATE.split("\n")[1]), msg);
});

test("a resolved login: host keys in the plugin's form, the connection the command plugin takes", () => {
    const { login, problems: found } = resolveSshLogin<string>(
        { address: "10.0.0.11", hostKey: `198.51.100.161 ${K1_KEY}`, privateKey: "KEY", proxy: { address: "192.0.2.10", user: "jump", hostKey: `${JUMP_KEY} jump@bastion` } },
        key,
    );
    assert.deepEqual(found, []);
    assert.deepEqual(sshConnection(login!), {
        host: "10.0.0.11",
        port: 22,
        user: "root",
        hostKey: K1_KEY,
        privateKey: "KEY",
        dialErrorLimit: 5,
        perDialTimeout: 10,
        proxy: { host: "192.0.2.10", port: 22, user: "jump", hostKey: JUMP_KEY, privateKey: "KEY", dialErrorLimit: 5, perDialTimeout: 10 },
    });
    assert.equal(resolveSshLogin({ address: "10.0.0.11", hostKey: "nope" }, key).login, undefined);
});

test("the private key: checked as it is read, then only a secret Output; a bad one is named, never shown", async () => {
    const found: (string | undefined)[] = [];
    const k = readPrivateKey("fou-tunnel:sshPrivateKey", PRIVATE, found);
    assert.deepEqual(found, [undefined]);
    assert.ok(pulumi.Output.isInstance(k));
    assert.equal(await pulumi.isSecret(k!), true);
    assert.equal(await valueOf(k!), PRIVATE);
    const damaged = PRIVATE.replace("PRIVATE KEY", "PRIVATE KEX");
    const bad: (string | undefined)[] = [];
    assert.equal(readPrivateKey("fou-tunnel:sshPrivateKey", damaged, bad), undefined);
    assert.match(bad[0]!, /^fou-tunnel:sshPrivateKey is not an SSH private key/);
    assert.ok(!bad[0]!.includes(PRIVATE.split("\n")[1]), bad[0]);
    assert.match(checkAgentSocket("a", "agent.sock")!, /^a must be the absolute path of an SSH agent's socket/);
    assert.match(checkAgentSocket("a", "/run/none.sock", () => false)!, /^a: there is no socket at \/run\/none\.sock/);
    assert.equal(checkAgentSocket("a", "/run/agent.sock", () => true), undefined);
});

test("from the stack config to the engine, the key stays secret: in the settings, the connection and every recorded input", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "fou-login-"));
    try {
        const file = path.join(dir, "t.yaml");
        writeFileSync(
            file,
            `hosts:\n  - name: l1\n    ssh: {address: 10.0.0.11, user: ops, hostKey: ${K1_KEY}, proxy: {address: 192.0.2.10, hostKey: ${JUMP_KEY}}}\n` +
                `  - name: l2\n    ssh: {address: 198.51.100.172, hostKey: ${K2_KEY}}\ntunnels:\n  - hosts: [l1, l2]\n`,
        );
        const cfg: Record<string, unknown> = { hosts: "ssh", topology: file, sshPrivateKey: PRIVATE };
        const s = parseSettings((k) => cfg[k], "fou-tunnel", { isSecret: () => true });
        const settings = s.ssh!.hosts[0];
        assert.equal(await pulumi.isSecret(settings.privateKey!), true);
        const h = new SshHost("login-l1", settings, { parent: root });
        assert.equal(await pulumi.isSecret(pulumi.output(h.host.connection)), true);
        const conn = (await valueOf(h.host.connection)) as unknown as Record<string, any>;
        assert.deepEqual([conn.privateKey, conn.proxy.privateKey, conn.proxy.user], [PRIVATE, PRIVATE, "ops"]);
        await valueOf(h.device);
        await settle();
        const mine = recorded.filter((r) => r.name.startsWith("login-l1"));
        assert.ok(mine.length > 0);
        const body = PRIVATE.split("\n")[1];
        for (const r of mine) {
            // The connection reaches the engine as one secret; the key is nowhere else.
            const { connection, ...rest } = r.inputs;
            assert.ok(!JSON.stringify(rest).includes(body), `${r.name} holds the key outside its connection`);
            if (connection !== undefined) {
                assert.equal(connection["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270", `${r.name}: connection not secret`);
            }
        }
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});
