/**
 * The topology file's ssh hosts: every invalid value is rejected before any resource, naming the
 * file:line:col and path, with the fix (ssh-keyscan for a missing host key): host keys, address,
 * port and user, sudo, the jump host, keys that belong elsewhere, the underlay address and device,
 * and GWIPs, pools and routes clear of the machines' addresses.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { JUMP_KEY, K1_KEY, K2_KEY } from "./sshFixtures";
import { GOOD_K1, GOOD_K2, PRIVATE, TWO, rejects, settings, topo } from "./sshConfigFixtures";

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

test("underlay address and device: unicast IPv4 or IPv6, given when the SSH address is a name, unique; a valid device name", () => {
    rejects({}, TWO(`    ssh: {address: web1.example.com, hostKey: ${K1_KEY}}\n`, GOOD_K2), [
        "t.yaml:2:5: hosts[0].underlayAddress: required when ssh.address is a DNS name (web1.example.com): the IPv4 or IPv6 address the host's peers send the tunnel to",
    ]);
    rejects({}, TWO(`${GOOD_K1}    underlayAddress: 10.10.10\n`, GOOD_K2), [
        /^t\.yaml:4:22: hosts\[0\]\.underlayAddress: must be an IPv4 or IPv6 address like 198\.51\.100\.1 or 2001:db8::1 \(got "10\.10\.10"\)$/,
    ]);
    rejects({}, TWO(`${GOOD_K1}    underlayAddress: fe80::1\n`, GOOD_K2), [
        /^t\.yaml:4:22: hosts\[0\]\.underlayAddress: fe80::1 is in fe80::\/10 \(link-local\); a tunnel's underlay needs a unicast address$/,
    ]);
    rejects({}, TWO(`${GOOD_K1}    underlayAddress: "::ffff:198.51.100.9"\n`, GOOD_K2), [/^t\.yaml:4:22: hosts\[0\]\.underlayAddress: ::ffff:198\.51\.100\.9 is in ::ffff:0:0\/96 \(an IPv4-mapped address/]);
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
