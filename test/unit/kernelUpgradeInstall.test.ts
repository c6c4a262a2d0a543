/**
 * The kernel install whatever the distribution: an unknown one refused, nothing done when fou is
 * usable, iproute2 alone when only ip lacks fou, no reboot into the same kernel, a failing package
 * manager's output; and every script of the upgrade through shellcheck.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { stepProgram } from "../../components/host";
import { fouUsableCheck, kernelInstallScripts, kernelPaths, kernelVerifyScripts } from "../../components/kernelUpgrade";
import { KEY } from "./kernelFixtures";
import { FOU_OK, NO_FOU, dir, eachShell, fakeHost, install } from "./kernelFakeHost";

eachShell("an unknown distribution: an error naming ID and VERSION_ID, nothing installed", (shell) => {
    const f = fakeHost({ os: "alpine", release: "6.6.7-0-virt", modules: NO_FOU, ipFou: true, boot: ["6.6.7-0-virt"], newRelease: "6.6.8-0-lts" });
    const r = install(shell, f);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^fou-tunnel: k1: kernel upgrade: Linux 6\.6\.7-0-virt lacks: fou, and the kernel upgrade knows Debian, Ubuntu, CentOS\/RHEL 7 and RHEL-family 8\/9 only; .*os-release says ID=alpine, VERSION_ID=3\.19\.1: nothing was installed;/);
    assert.deepEqual(f.log(), []);
    assert.ok(!existsSync(f.paths.state));
});

eachShell("fou usable already: nothing changes, action=none", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: FOU_OK, ipFou: true, boot: ["6.1.0-57-amd64"] });
    const r = install(shell, f, { modules: ["fou", "ipip", "sit"] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "kernel=6.1.0-57-amd64\naction=none\n");
    assert.deepEqual(f.log(), []);
    assert.ok(!existsSync(f.paths.log), "not even a log");
    // fou built in counts as usable.
    const b = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: { ...NO_FOU, fou: "builtin" }, ipFou: true, boot: [] });
    assert.equal(install(shell, b).stdout, "kernel=6.1.0-57-amd64\naction=none\n");
});

eachShell("only ip lacks fou: iproute2 is installed, no reboot", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: FOU_OK, ipFou: false, boot: ["6.1.0-57-amd64"] });
    const r = install(shell, f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "kernel=6.1.0-57-amd64\naction=ip\n");
    assert.deepEqual(f.log(), ["apt-get update (DEBIAN_FRONTEND=noninteractive)", "apt-get install -y iproute2 (DEBIAN_FRONTEND=noninteractive)"]);
});

eachShell("a package that adds no newer kernel: an error, no reboot", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: ["6.1.0-57-amd64"], active: ["ssh.service"] });
    const r = install(shell, f, { package: "linux-image-amd64" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /after installing linux-image-amd64 the newest kernel in .* is 6\.1\.0-57-amd64, the running one: nothing to reboot into/);
    assert.ok(!f.log().some((l) => /systemd-run|systemctl stop/.test(l)), f.log().join("\n"));
});


eachShell("a failing package manager: its output's end on stderr, no reboot", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: ["6.1.0-57-amd64"] });
    writeFileSync(path.join(f.root, "bin", "apt-get"), "#!/bin/sh\necho 'E: Unable to locate package linux-image-6.12-amd64'\nexit 100\n", { mode: 0o755 });
    const r = install(shell, f);
    assert.equal(r.code, 100);
    assert.match(r.stderr, /^fou-tunnel: k1: kernel upgrade: apt-get update failed \(exit 100\); the end of .*k1\.log:\n\+ apt-get update\nE: Unable to locate package/);
});

test("every script passes shellcheck -s sh", () => {
    const paths = kernelPaths("/var/lib/fou-tunnel/p.s/k1.kernel", "/var/lib/fou-tunnel/p.s/k1.log");
    const programs: Record<string, string> = {
        install: stepProgram(kernelInstallScripts({ modules: ["fou", "ipip", "sit"], paths, label: "k1: kernel upgrade" })),
        "install-repo": stepProgram(kernelInstallScripts({ modules: ["fou"], package: "linux-image-6.12-amd64", repository: "deb http://198.51.100.1/ b main", key: KEY, paths })),
        "install-repo-nokey": stepProgram(kernelInstallScripts({ modules: ["fou", "ip_gre"], repository: "deb http://198.51.100.1/ b main", paths })),
        verify: stepProgram(kernelVerifyScripts(paths, "k1: kernel upgrade")),
        check: fouUsableCheck(["fou", "ipip"], paths),
    };
    for (const [name, text] of Object.entries(programs)) {
        const file = path.join(dir, `${name}.sh`);
        writeFileSync(file, text);
        const r = spawnSync("shellcheck", ["-s", "sh", "-f", "gcc", file], { encoding: "utf8" });
        assert.ok(r.status !== null, "shellcheck runs");
        const notes = r.stdout.split("\n").filter((l) => l !== "" && !/\[SC2235\]/.test(l));
        assert.deepEqual(notes, [], `${name}:\n${r.stdout}`);
    }
});
