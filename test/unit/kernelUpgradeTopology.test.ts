/**
 * The topology's `kernel:` block: read with its defaults, each bad value rejected with its
 * file:line:col, and refused on local and aws hosts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { K1_KEY, K2_KEY } from "./sshFixtures";
import { KEY, SSH } from "./kernelFixtures";
import { rejects as rejectsAs, y } from "./topologyFixtures";
import { TopologyOptions, parseTopology } from "../../topology";

/** Asserts that one problem is `<at>: <rule>`, the file read as an ssh stack's unless OPTIONS say otherwise. */
function rejects(text: string, at: string, rule: RegExp, options: TopologyOptions = SSH): void {
    rejectsAs(text, at, rule, options);
}

/** Two ssh hosts, k1 with the given kernel block (indented under it), and a tunnel. */
const withKernel = (kernel: string) =>
    `hosts:\n  - name: k1\n    ssh: {address: 198.51.100.171, hostKey: ${K1_KEY}}\n    kernel:\n${kernel
        .split("\n")
        .map((l) => `      ${l}`)
        .join("\n")}\n  - name: k2\n    ssh: {address: 198.51.100.172, hostKey: ${K2_KEY}}\ntunnels:\n  - hosts: [k1, k2]\n`;

test("topology: the kernel block is read with its defaults; hosts without one have none", () => {
    const t = parseTopology(withKernel(`upgrade: true\npackage: linux-image-6.12-amd64\nrepository: "deb http://198.51.100.1:8080/ bookworm-fou main"\nkey: |\n${KEY.split("\n").map((l) => `  ${l}`).join("\n")}`), "t.yaml", SSH);
    assert.deepEqual(t.hosts[0].kernel, {
        upgrade: true,
        package: "linux-image-6.12-amd64",
        repository: "deb http://198.51.100.1:8080/ bookworm-fou main",
        key: KEY,
        rebootTimeout: 600,
    });
    assert.equal(t.hosts[1].kernel, undefined);
    assert.deepEqual(parseTopology(withKernel("upgrade: false\nrebootTimeout: 60"), "t.yaml", SSH).hosts[0].kernel, { upgrade: false, rebootTimeout: 60 });
});

test("topology: a bad package name, with file:line:col", () => {
    rejects(withKernel("upgrade: true\npackage: Linux_Image"), "t.yaml:6:16: hosts[0].kernel.package", /must be a package name like linux-image-6\.12-amd64 .*\(got "Linux_Image"\)/);
    rejects(withKernel("upgrade: true\npackage: '-x'"), "t.yaml:6:16: hosts[0].kernel.package", /must be a package name/);
});

test("topology: kernel on a local or aws host says where their kernel comes from", () => {
    const local = y`
        hosts:
          - name: k1
            kernel: {upgrade: true}
          - name: k2
        tunnels:
          - hosts: [k1, k2]
    `;
    rejects(local, "t.yaml:3:5: hosts[0].kernel", /only for ssh hosts .*local VMs get their kernel from the VM image/, { kind: "local", underlay: "198.51.100.1/24" });
    rejects(local, "t.yaml:3:5: hosts[0].kernel", /only for ssh hosts .*EC2 instances get their kernel from the AMI/, { kind: "aws" });
});

test("topology: a reboot timeout out of range", () => {
    rejects(withKernel("upgrade: true\nrebootTimeout: 30"), "t.yaml:6:22: hosts[0].kernel.rebootTimeout", /must be a whole number of seconds from 60 to 3600: .* \(got 30\)/);
    rejects(withKernel("upgrade: true\nrebootTimeout: 3601"), "t.yaml:6:22: hosts[0].kernel.rebootTimeout", /from 60 to 3600/);
    rejects(withKernel("upgrade: true\nrebootTimeout: 1.5"), "t.yaml:6:22: hosts[0].kernel.rebootTimeout", /from 60 to 3600/);
});

test("topology: a repository with a newline, or without an http(s) URL", () => {
    rejects(withKernel('upgrade: true\nrepository: "deb http://198.51.100.1/ bookworm main\\ndeb http://evil/ x main"'), "t.yaml:6:19: hosts[0].kernel.repository", /must be one line without control characters/);
    rejects(withKernel('upgrade: true\nrepository: "deb ftp://198.51.100.1/ bookworm main"'), "t.yaml:6:19: hosts[0].kernel.repository", /must be an apt source line with an http\(s\) URL/);
    rejects(withKernel("upgrade: true\nrepository: http://198.51.100.1/"), "t.yaml:6:19: hosts[0].kernel.repository", /must be an apt source line/);
});

test("topology: a key that is no armored block, a key without a repository, an unknown key", () => {
    rejects(withKernel('upgrade: true\nrepository: "deb http://198.51.100.1/ b main"\nkey: "mQINBGZ0"'), "t.yaml:7:12: hosts[0].kernel.key", /must be an ASCII-armored PGP public key block/);
    rejects(withKernel(`upgrade: true\nkey: |\n${KEY.split("\n").map((l) => `  ${l}`).join("\n")}`), "t.yaml:6:12: hosts[0].kernel.key", /is the key of kernel\.repository, which is not set/);
    rejects(withKernel("upgrade: true\nrebootTimout: 600"), "t.yaml:6:7: hosts[0].kernel.rebootTimout", /unknown key \(did you mean rebootTimeout\?\)/);
    rejects(withKernel("upgrade: yes"), "t.yaml:5:16: hosts[0].kernel.upgrade", /must be true or false/);
});
