/**
 * SshHost: a machine that exists already, as the components' TunnelHost. The connection it
 * builds (pinned key, bounded dials, proxy), its first command (reachability, sudo, underlay
 * address, device; run with fakes under dash, bash and busybox sh), sudo on every later step, no deletedWith,
 * and every invalid argument rejected before any resource, naming the argument.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { byArgs, FakeHostResult, Fakes, fixtureTests, runOnFakeHost } from "./fakeHost";
import { recorded, root, settle, valueOf } from "./mocks";
import { HostPrep } from "../../components/hostPrep";
import { parseReachDevice, reachScript, SshHost, SshHostArgs } from "../../components/sshHost";
import { normalizeHostKey } from "../../lib/ssh";
import { JUMP_KEY, K1_KEY, K2_KEY } from "./sshFixtures";

const PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot checked by the component\n-----END OPENSSH PRIVATE KEY-----\n";

let rootHost: SshHost;
let sudoHost: SshHost;
let jumped: SshHost;

function res(name: string) {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no resource ${name}; have ${recorded.map((x) => x.name).join(", ")}`);
    return r;
}

before(async () => {
    rootHost = new SshHost(
        "sa-k1",
        { name: "k1", address: "198.51.100.161", hostKey: `${K1_KEY} root@k1`, privateKey: pulumi.secret(PRIVATE) },
        { parent: root },
    );
    sudoHost = new SshHost(
        "sa-k2",
        { name: "k2", address: "198.51.100.162", port: 2222, user: "deploy", hostKey: `198.51.100.162 ${K2_KEY}`, agentSocketPath: "/run/agent.sock", device: "ens3" },
        { parent: root },
    );
    jumped = new SshHost(
        "sa-k3",
        {
            name: "k3",
            address: "10.0.0.3",
            underlayAddress: pulumi.output("10.0.0.3"),
            hostKey: pulumi.output(K1_KEY),
            privateKey: PRIVATE,
            proxy: { address: "jump.example.com", port: 2200, user: "jump", hostKey: JUMP_KEY },
        },
        { parent: root },
    );
    new HostPrep("sa-k2-prep", { host: sudoHost.host }, { parent: root });
    await valueOf(rootHost.device);
    await valueOf(sudoHost.device);
    await valueOf(jumped.device);
    await settle();
});

test("dials: bounded by default; a caller may change them, for the host and its jump host", async () => {
    const h = new SshHost(
        "sa-k4",
        { name: "k4", address: "198.51.100.164", hostKey: K1_KEY, privateKey: PRIVATE, dials: { perDialTimeout: 30 }, proxy: { address: "192.0.2.10", hostKey: JUMP_KEY } },
        { parent: root },
    );
    const c = (await valueOf(h.host.connection)) as unknown as Record<string, any>;
    assert.deepEqual([c.dialErrorLimit, c.perDialTimeout, c.proxy.dialErrorLimit, c.proxy.perDialTimeout], [5, 30, 5, 30]);
    await settle();
    const recordedConn = res("sa-k4-reachable").inputs.connection;
    assert.equal((recordedConn.value ?? recordedConn).perDialTimeout, 30); // secret: wrapped by the mocks
});

test("a component fou:index:SshHost whose children are named after it", () => {
    assert.equal(res("sa-k1").type, "fou:index:SshHost");
    assert.equal(res("sa-k1-reachable").type, "command:remote:Command");
    assert.equal(res("sa-k1-reachable").parent, "sa-k1");
    assert.deepEqual(
        recorded.filter((r) => r.parent === "sa-k1").map((r) => r.name),
        ["sa-k1-reachable"],
    );
});

test("the connection: root on port 22 by default, the host key pinned without its comment, bounded dials", async () => {
    const c = await valueOf(rootHost.host.connection);
    assert.deepEqual(c, { host: "198.51.100.161", port: 22, user: "root", hostKey: K1_KEY, privateKey: PRIVATE, dialErrorLimit: 5, perDialTimeout: 10 });
    assert.equal(await pulumi.isSecret(pulumi.output(rootHost.host.connection)), true);
    // A line of ssh-keyscan output is taken too: the address in front is dropped.
    const c2 = await valueOf(sudoHost.host.connection);
    assert.deepEqual(c2, { host: "198.51.100.162", port: 2222, user: "deploy", hostKey: K2_KEY, agentSocketPath: "/run/agent.sock", dialErrorLimit: 5, perDialTimeout: 10 });
});

test("a jump host: its own address, port, user and pinned key; the host's key by default; bounded dials", async () => {
    const c = (await valueOf(jumped.host.connection)) as unknown as Record<string, unknown>;
    assert.deepEqual(c.proxy, { host: "jump.example.com", port: 2200, user: "jump", hostKey: JUMP_KEY, privateKey: PRIVATE, dialErrorLimit: 5, perDialTimeout: 10 });
    assert.equal(c.host, "10.0.0.3");
});

test("the TunnelHost: underlay address defaults to the SSH address, the device is the one the host reported", async () => {
    assert.equal(rootHost.host.name, "k1");
    assert.equal(await valueOf(rootHost.host.underlayAddress), "198.51.100.161");
    assert.equal(await valueOf(rootHost.host.device), "eth0"); // the mocked first command's device=eth0
    assert.equal(await valueOf(sudoHost.host.device), "ens3"); // given: used as it is
    assert.equal(rootHost.host.sudo, undefined);
    assert.equal(sudoHost.host.sudo, true);
    // The stack does not own the machine: every undo runs.
    assert.equal(rootHost.host.deletedWith, undefined);
    assert.equal(rootHost.host.retainOnDelete, undefined);
    assert.deepEqual(rootHost.host.readyAfter, [rootHost.reachable]);
    assert.equal(await valueOf(rootHost.host.identity!), "198.51.100.161:22");
});

test("the first command changes nothing and undoes nothing; another address or port replaces it", () => {
    const r = res("sa-k1-reachable").inputs;
    assert.equal(r.delete, undefined);
    assert.deepEqual(r.triggers, ["198.51.100.161", 22]);
    assert.match(r.create, /^at='k1 \(root@198\.51\.100\.161 port 22\)'/);
    assert.doesNotMatch(r.create, /sudo -n/);
    const s = res("sa-k2-reachable").inputs.create as string;
    assert.match(s, /command -v sudo/);
    assert.match(s, /exec sudo -n \/bin\/sh -c /);
});

test("a sudo host: every later step runs through sudo -n and waits for the first command", () => {
    const kernel = res("sa-k2-prep-kernel");
    // The program comes on stdin; sudo's use was checked by the first command, which it waits for.
    assert.equal(kernel.inputs.createLine, "sudo -n /bin/sh -s create");
    assert.equal(kernel.inputs.deleteLine, "sudo -n /bin/sh -s delete");
    assert.match(kernel.inputs.create, /^set -eu$/m);
    assert.ok(kernel.dependsOn.includes("sa-k2-reachable"), JSON.stringify(kernel.dependsOn));
    assert.ok(kernel.inputs.triggers.includes("198.51.100.162:2222"), JSON.stringify(kernel.inputs.triggers));
});

/** The first command for ARGS on a fake host; it runs as sent, with no `set` flags of its own. */
function reach(args: Parameters<typeof reachScript>[0], fakes: Fakes, path?: string): FakeHostResult {
    return runOnFakeHost({ script: reachScript(args), fakes, set: "", path });
}

const IP_ADDRS = [
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
    "2: ens3    inet 198.51.100.161/24 brd 198.51.100.255 scope global ens3\\       valid_lft forever preferred_lft forever",
    "3: br0    inet 10.1.0.1/16 scope global br0\\       valid_lft forever preferred_lft forever",
];
/** `ip -o -4 addr show` as a host with ens3 and br0 prints it; br0 exists; any other call fails. */
const FAKE_IP = byArgs("ip", { "-o -4 addr show": IP_ADDRS, "-o -4 addr show scope global": IP_ADDRS.slice(1), "link show dev br0": { status: 0 } }, { status: 1 });
const AS_ROOT: Fakes = { ip: FAKE_IP, hostname: "echo web1", id: '[ "$1" = -u ] && echo 0 || echo root' };

test("first command: reports the device that holds the underlay address", () => {
    const r = reach({ label: "k1 (root@198.51.100.161 port 22)", underlayAddress: "198.51.100.161", sudo: false }, AS_ROOT);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, "device=ens3\naddress=198.51.100.161\n");
    assert.equal(parseReachDevice("k1", r.out), "ens3");
    // A device given and present is used, even when the address sits on another one.
    const g = reach({ label: "k1", underlayAddress: "198.51.100.161", device: "br0", sudo: false }, AS_ROOT);
    assert.equal(g.out, "device=br0\naddress=198.51.100.161\n");
});

fixtureTests("first command", [
    {
        name: "an underlay address that is not the host's is named, with what the host has",
        script: () => reachScript({ label: "k1 (root@203.0.113.9 port 22)", underlayAddress: "203.0.113.9", sudo: false }),
        fakes: AS_ROOT,
        set: "",
        expect: {
            code: 1,
            out: "fou-tunnel: k1 (root@203.0.113.9 port 22): 203.0.113.9 is not an address of web1 (it has 198.51.100.161/24 on ens3, 10.1.0.1/16 on br0): set underlayAddress to the address its peers reach it at\n",
        },
    },
    {
        name: "a device that does not exist",
        script: () => reachScript({ label: "k1", underlayAddress: "198.51.100.161", device: "eth9", sudo: false }),
        fakes: AS_ROOT,
        set: "",
        expect: { code: 1, out: /^fou-tunnel: k1: web1 has no device eth9 \(198\.51\.100\.161 is on ens3\): set device to an existing one, or leave it unset$/m },
    },
    {
        name: "a user that is not root without sudo",
        script: () => reachScript({ label: "k1", underlayAddress: "198.51.100.161", sudo: false }),
        fakes: { ip: FAKE_IP, id: '[ "$1" = -u ] && echo 1000 || echo deploy' },
        set: "",
        expect: { code: 1, out: /^fou-tunnel: k1: user deploy is not root and sudo is off: the steps need root; connect as root or turn sudo on$/m },
    },
    // No ip on PATH, and none as a shell builtin: Debian's busybox-static shell runs its own ip
    // applet whatever PATH says, and reports it to `command -v`, so the fake `command` hides it.
    {
        name: "no ip",
        script: () => reachScript({ label: "k1", underlayAddress: "198.51.100.161", sudo: false }),
        fakes: { hostname: "echo web1", id: "echo 0", command: '[ "$*" != "-v ip" ]' },
        path: "/nonexistent",
        set: "",
        expect: { code: 1, out: /^fou-tunnel: k1: web1 has no ip command: install iproute2$/m },
    },
    {
        name: "no sudo",
        script: () => reachScript({ label: "k2", underlayAddress: "198.51.100.161", sudo: true }),
        fakes: { hostname: "echo web2", id: "echo deploy" },
        path: "/nonexistent",
        set: "",
        expect: { code: 1, out: /^fou-tunnel: k2: user deploy is not root and web2 has no sudo: install sudo and allow this user/m },
    },
    {
        name: "through sudo, a sudo that wants a password fails at once, saying so",
        script: () => reachScript({ label: "k2", underlayAddress: "198.51.100.161", sudo: true }),
        fakes: { ip: FAKE_IP, hostname: "echo web2", id: "echo deploy", sudo: 'echo "sudo: a password is required" >&2; return 1', command: "return 0" },
        set: "",
        expect: { code: 1, out: /fou-tunnel: web2: user deploy cannot use sudo without a password \(sudo -n\): allow it \(NOPASSWD\) for this user, or connect as root/ },
    },
    // A sudo that allows it runs the check (`sudo -n /bin/sh -c SCRIPT`), here in this shell with its fakes.
    {
        name: "through sudo, a sudo that allows it runs the check",
        script: () => reachScript({ label: "k2", underlayAddress: "198.51.100.161", sudo: true }).replace("exec sudo", "sudo"),
        fakes: { ...AS_ROOT, sudo: 'shift; if [ "$1" = true ]; then return 0; fi; (eval "$3")', command: "return 0" },
        set: "",
        expect: { code: 0, out: "device=ens3\naddress=198.51.100.161\n" },
    },
]);

test("hostile values stay data in the first command", () => {
    const r = reach({ label: "k1 $(touch /tmp/fou-pwned-ssh)", underlayAddress: "198.51.100.161'; touch /tmp/fou-pwned-ssh; '", sudo: false }, AS_ROOT);
    assert.equal(r.code, 1);
    assert.match(r.out, /^fou-tunnel: k1 \$\(touch \/tmp\/fou-pwned-ssh\): 198\.51\.100\.161'; touch/m);
    assert.throws(() => execFileSync("test", ["-e", "/tmp/fou-pwned-ssh"]));
});

/** Builds an SshHost from k1's valid arguments with `patch` applied; returns the error message. */
function rejects(patch: Partial<SshHostArgs> & Record<string, unknown>, pattern: RegExp): void {
    const args = { name: "k1", address: "198.51.100.161", hostKey: K1_KEY, privateKey: PRIVATE, ...patch } as SshHostArgs;
    const before = recorded.length;
    assert.throws(() => new SshHost("bad", args, { parent: root }), (e: Error) => {
        assert.match(e.message, pattern);
        return true;
    });
    assert.equal(recorded.length, before, "nothing declared");
}

test("invalid arguments are rejected before any resource, naming the argument", () => {
    rejects({ hostKey: undefined }, /^SshHost bad: hostKey is required: the host's SSH public key, pinned .*; get it with `ssh-keyscan -t ed25519 198\.51\.100\.161`/);
    rejects({ port: 2222, hostKey: "" }, /`ssh-keyscan -t ed25519 -p 2222 198\.51\.100\.161`/);
    rejects({ hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJSgoaBKReMIjr6qnxVs" }, /^SshHost bad: hostKey is not a valid ssh-ed25519 public key \(the base64 part is damaged or of another type/);
    rejects({ hostKey: "AAAAC3NzaC1lZDI1NTE5AAAAIJSgoaBKReMIjr6qnxVsW5xl4Wgr" }, /^SshHost bad: hostKey must start with a host key type \(ssh-ed25519, /);
    rejects({ hostKey: PRIVATE }, /^SshHost bad: hostKey is a private key; pin the host's public key/);
    rejects({ hostKey: `${K1_KEY}\n${K2_KEY}` }, /^SshHost bad: hostKey has 2 lines; give one key/);
    rejects({ port: 70000 }, /^SshHost bad: port must be a TCP port number from 1 to 65535 \(got 70000\)/);
    rejects({ user: "root; reboot" }, /^SshHost bad: user must be a user name of 1-32 letters/);
    rejects({ address: "198.51.100.300" }, /^SshHost bad: address must be an IP address or a DNS name/);
    rejects({ address: "web1.example.com" }, /^SshHost bad: address web1\.example\.com is not an IP address, so it cannot be the underlay address: set underlayAddress, the IPv4 or IPv6 address/);
    rejects({ underlayAddress: "fe80::1" }, /^SshHost bad: underlayAddress fe80::1 is in fe80::\/10 \(link-local\); a tunnel's underlay needs a unicast address/);
    rejects({ underlayAddress: "10.0.0" }, /^SshHost bad: underlayAddress must be an IPv4 or IPv6 address/);
    rejects({ device: "eth0; reboot" }, /^SshHost bad: device "eth0; reboot" may only contain/);
    rejects({ name: "K1" }, /^SshHost bad: name must be 1-12 characters/);
    rejects({ user: "deploy", sudo: false }, /^SshHost bad: sudo is false but user deploy is not root: the steps need root/);
    rejects({ proxy: { hostKey: JUMP_KEY } as never }, /^SshHost bad: proxy\.address is required: the jump host's IP address or DNS name, like 192\.0\.2\.10$/);
    rejects({ proxy: { address: "192.0.2.10" } as never }, /^SshHost bad: proxy\.hostKey is required: .*`ssh-keyscan -t ed25519 192\.0\.2\.10`/);
    rejects({ proxy: { address: "192.0.2.10", port: 0, hostKey: JUMP_KEY } }, /^SshHost bad: proxy\.port must be a TCP port number from 1 to 65535 \(got 0\)/);
    rejects({ proxy: { address: "198.51.100.161", hostKey: JUMP_KEY } }, /^SshHost bad: proxy is the host itself \(198\.51\.100\.161 port 22\)/);
    rejects({ dials: { perDialTimeout: 0 } }, /^SshHost bad: dials\.perDialTimeout must be an integer from 1 to 300 \(got 0\)/);
});

test("every problem at once", () => {
    rejects({ hostKey: undefined, port: 0, user: "-x" }, /^invalid input:\n {2}- SshHost bad: user .*\n {2}- SshHost bad: port .*\n {2}- SshHost bad: hostKey is required/);
});

test("host keys: authorized_keys lines and ssh-keyscan lines give the plugin's form; others nothing", () => {
    assert.equal(normalizeHostKey(`${K1_KEY} root@k1\n`), K1_KEY);
    assert.equal(normalizeHostKey(`# 198.51.100.161:22 SSH-2.0-OpenSSH_9.2\n198.51.100.161 ${K1_KEY}`), K1_KEY);
    assert.equal(normalizeHostKey(`[198.51.100.161]:2222 ${JUMP_KEY}`), JUMP_KEY);
    assert.equal(normalizeHostKey(K1_KEY.replace("ssh-ed25519", "ssh-rsa")), undefined);
    assert.equal(normalizeHostKey(42), undefined);
});
