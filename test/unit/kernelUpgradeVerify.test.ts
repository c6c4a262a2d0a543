/**
 * The kernel upgrade's verify after the reboot and its drift check, on a fake host under each
 * host shell: a new boot on the new kernel with fou loading, or a failure naming the releases
 * and the boot entry.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { runIn } from "./hostShells";
import { fouUsableCheck } from "../../components/kernelUpgrade";
import { FOU_OK, NEW_BOOT, NO_FOU, PENDING, eachShell, fakeHost, verify } from "./kernelFakeHost";

eachShell("verify after the reboot: a new boot on the new kernel, fou loads; reported and recorded", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.12.12-amd64", modules: FOU_OK, ipFou: true, boot: [], bootId: NEW_BOOT, state: PENDING });
    const r = verify(shell, f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `kernelBefore=6.1.0-57-amd64\nkernelAfter=6.12.12-amd64\nbootId=${NEW_BOOT}\n`);
    assert.deepEqual(f.log(), ["modprobe fou", "modprobe -r fou"]);
    assert.equal(readFileSync(f.paths.state, "utf8"), PENDING.replace("pending=1", "pending=0"));
    // Run again (the install re-ran with action=none): the same report.
    assert.equal(verify(shell, f).stdout, r.stdout);
});

eachShell("verify: no reboot happened, or the old kernel booted: fails with the releases and the boot entry", (shell) => {
    const same = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: [], state: PENDING });
    const s = verify(shell, same);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /^fou-tunnel: k1: kernel upgrade: the host has not rebooted \(boot id 11111111-/);
    const old = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: [], bootId: NEW_BOOT, state: PENDING });
    const o = verify(shell, old);
    assert.equal(o.code, 1);
    assert.match(o.stderr, /the host rebooted into Linux 6\.1\.0-57-amd64, not the installed 6\.12\.12-amd64 \(it ran 6\.1\.0-57-amd64 before\); the default boot entry: \/boot\/vmlinuz-6\.1\.0-57-amd64 \(grubby --default-kernel\)/);
    rmSync(path.join(old.root, "bin", "grubby"));
    assert.match(verify(shell, old).stderr, /the default boot entry: GRUB_DEFAULT=0 \(.*etc\/default\/grub\)/);
    const noFou = fakeHost({ os: "debian12", release: "6.12.12-amd64", modules: NO_FOU, ipFou: true, boot: [], bootId: NEW_BOOT, state: PENDING });
    assert.match(verify(shell, noFou).stderr, /Linux 6\.12\.12-amd64 has no fou module/);
});

eachShell("verify with no reboot pending: the running kernel as both", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: FOU_OK, ipFou: true, boot: [] });
    const r = verify(shell, f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "kernelBefore=6.1.0-57-amd64\nkernelAfter=6.1.0-57-amd64\nbootId=11111111-2222-3333-4444-555555555555\n");
    assert.deepEqual(f.log(), []);
});

eachShell("the drift check: fou usable on the running kernel, or what is missing", (shell) => {
    const good = fakeHost({ os: "debian12", release: "6.12.12-amd64", modules: FOU_OK, ipFou: true, boot: [] });
    assert.equal(runIn(shell, `${good.wrap}\n${fouUsableCheck(["fou", "ipip"], good.paths)}`, { env: good.env }).code, 0);
    const bad = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: [] });
    const r = runIn(shell, `${bad.wrap}\n${fouUsableCheck(["fou", "ipip"], bad.paths)}`, { env: bad.env });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "Linux 6.1.0-57-amd64 lacks: fou (booted into an old kernel?)\n");
});
