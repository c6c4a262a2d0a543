/**
 * The kernel install on Debian and Ubuntu, on a fake host under each host shell: the archive's
 * kernel package or one from a given repository (with its key dearmored, kept armored, or none),
 * update-grub, then the reboot with the SSH units stopped.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { KEY } from "./kernelFixtures";
import { NO_FOU, OUT, REBOOT, eachShell, fakeHost, install } from "./kernelFakeHost";

eachShell("Debian 12 from the archive: linux-image-6.12-amd64, update-grub", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: ["6.1.0-57-amd64"], newRelease: "6.12.12+bpo-amd64", active: ["ssh.service"] });
    const r = install(shell, f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, OUT("6.1.0-57-amd64", "6.12.12+bpo-amd64"));
    assert.deepEqual(f.log(), [
        "apt-get update (DEBIAN_FRONTEND=noninteractive)",
        "apt-get install -y linux-image-6.12-amd64 (DEBIAN_FRONTEND=noninteractive)",
        "update-grub",
        ...REBOOT,
        "systemctl stop ssh.service",
    ]);
    assert.ok(!existsSync(path.join(f.root, "etc/apt")), "no repository written");
});

eachShell("Debian with a repository and key: the key dearmored with gpg, signed-by on it, then apt", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: ["6.1.0-57-amd64"], newRelease: "6.12.12-amd64", gpg: true, active: ["ssh.service"] });
    const r = install(shell, f, { package: "linux-image-6.12.12-amd64", repository: "deb [arch=amd64 signed-by=/etc/apt/keyrings/fou-kernel.gpg] http://198.51.100.1:8080/ bookworm-fou main", key: KEY });
    assert.equal(r.code, 0, r.stderr);
    const gpgFile = path.join(f.root, "etc/apt/keyrings/fou-tunnel-kernel.gpg");
    assert.equal(readFileSync(gpgFile, "utf8"), `DEARMORED:${KEY}`);
    assert.ok(!existsSync(path.join(f.root, "etc/apt/keyrings/fou-tunnel-kernel.asc")));
    assert.equal(
        readFileSync(path.join(f.root, "etc/apt/sources.list.d/fou-tunnel-kernel.list"), "utf8"),
        `deb [arch=amd64 signed-by=${gpgFile}] http://198.51.100.1:8080/ bookworm-fou main\n`,
    );
    assert.deepEqual(f.log(), [
        "gpg --dearmor",
        "apt-get update (DEBIAN_FRONTEND=noninteractive)",
        "apt-get install -y linux-image-6.12.12-amd64 (DEBIAN_FRONTEND=noninteractive)",
        "update-grub",
        ...REBOOT,
        "systemctl stop ssh.service",
    ]);
});

eachShell("Debian with a repository and key, no gpg: the armored key as .asc, signed-by on it", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: ["6.1.0-57-amd64"], newRelease: "6.12.12-amd64", active: ["ssh.service"] });
    const r = install(shell, f, { repository: "deb http://198.51.100.1:8080/ bookworm-fou main", key: KEY });
    assert.equal(r.code, 0, r.stderr);
    const asc = path.join(f.root, "etc/apt/keyrings/fou-tunnel-kernel.asc");
    assert.equal(readFileSync(asc, "utf8"), KEY);
    assert.equal(readFileSync(path.join(f.root, "etc/apt/sources.list.d/fou-tunnel-kernel.list"), "utf8"), `deb [signed-by=${asc}] http://198.51.100.1:8080/ bookworm-fou main\n`);
    assert.equal(f.log()[1], "apt-get install -y linux-image-6.12-amd64 (DEBIAN_FRONTEND=noninteractive)");
});

eachShell("Debian with a repository and no key: the line as written", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: ["6.1.0-57-amd64"], newRelease: "6.12.12-amd64" });
    const line = "deb [trusted=yes] http://198.51.100.1:8080/ bookworm-fou main";
    const r = install(shell, f, { repository: line });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(path.join(f.root, "etc/apt/sources.list.d/fou-tunnel-kernel.list"), "utf8"), `${line}\n`);
    assert.ok(!existsSync(path.join(f.root, "etc/apt/keyrings/fou-tunnel-kernel.gpg")));
});

eachShell("Ubuntu 22.04: the HWE kernel; socket-activated ssh stopped too", (shell) => {
    const f = fakeHost({ os: "ubuntu22", release: "5.15.0-1051-aws", modules: NO_FOU, ipFou: true, boot: ["5.15.0-1051-aws"], newRelease: "6.8.0-52-generic", active: ["ssh.socket", "ssh.service"] });
    const r = install(shell, f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, OUT("5.15.0-1051-aws", "6.8.0-52-generic"));
    assert.deepEqual(f.log(), [
        "apt-get update (DEBIAN_FRONTEND=noninteractive)",
        "apt-get install -y linux-generic-hwe-22.04 (DEBIAN_FRONTEND=noninteractive)",
        "update-grub",
        ...REBOOT,
        "systemctl stop ssh.socket",
        "systemctl stop ssh.service",
    ]);
});

