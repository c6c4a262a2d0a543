/**
 * The kernel install on the RHEL family, on a fake host under each host shell: ELRepo's kernel-ml
 * through yum (CentOS 7) or dnf (Rocky 9), the boot default set, then the reboot; a Debian
 * repository line refused there.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ELREPO } from "../../components/kernelUpgrade";
import { NO_FOU, OUT, REBOOT, eachShell, fakeHost, install } from "./kernelFakeHost";

eachShell("CentOS 7: the guide's commands in order, then the reboot; sshd stopped", (shell) => {
    const f = fakeHost({ os: "centos7", release: "3.10.0-1160.el7.x86_64", modules: { ipip: "tunnel4,ip_tunnel", ip_tunnel: "" }, ipFou: false, boot: ["3.10.0-1160.el7.x86_64", "0-rescue-0123abcd"], newRelease: "6.9.7-1.el7.elrepo.x86_64", active: ["sshd.service"] });
    const r = install(shell, f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, OUT("3.10.0-1160.el7.x86_64", "6.9.7-1.el7.elrepo.x86_64"));
    assert.deepEqual(f.log(), [
        `rpm --import ${ELREPO.key}`,
        "rpm -q elrepo-release",
        "yum install -y https://www.elrepo.org/elrepo-release-7.el7.elrepo.noarch.rpm",
        "yum --enablerepo=elrepo-kernel install -y kernel-ml",
        "grub2-set-default 0",
        "grub2-mkconfig -o /boot/grub2/grub.cfg",
        "yum -y update iproute",
        ...REBOOT,
        "systemctl stop sshd.service",
    ]);
    assert.equal(readFileSync(f.paths.state, "utf8"), "pending=1\nold=3.10.0-1160.el7.x86_64\nbootId=11111111-2222-3333-4444-555555555555\nnew=6.9.7-1.el7.elrepo.x86_64\n");
});

eachShell("Rocky 9: ELRepo's el9 kernel-ml through dnf, grubby --set-default to it", (shell) => {
    const f = fakeHost({ os: "rocky9", release: "5.14.0-362.el9.x86_64", modules: NO_FOU, ipFou: true, boot: ["5.14.0-362.el9.x86_64"], newRelease: "6.6.8-1.el9.elrepo.x86_64", active: ["sshd.service"] });
    const r = install(shell, f);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, OUT("5.14.0-362.el9.x86_64", "6.6.8-1.el9.elrepo.x86_64"));
    assert.deepEqual(f.log(), [
        `rpm --import ${ELREPO.key}`,
        `rpm --import ${ELREPO.keyV2}`,
        "rpm -q elrepo-release",
        "dnf install -y https://www.elrepo.org/elrepo-release-9.el9.elrepo.noarch.rpm",
        "dnf --enablerepo=elrepo-kernel install -y kernel-ml",
        `grubby --set-default ${f.root}/boot/vmlinuz-6.6.8-1.el9.elrepo.x86_64`,
        ...REBOOT,
        "systemctl stop sshd.service",
    ]);
});


eachShell("a repository on a yum host: an error, nothing installed", (shell) => {
    const f = fakeHost({ os: "centos7", release: "3.10.0-1160.el7.x86_64", modules: NO_FOU, ipFou: true, boot: [] });
    const r = install(shell, f, { repository: "deb http://198.51.100.1/ b main" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kernel\.repository is an apt source line, and this host is centos 7 \(yum\/dnf\): nothing was installed/);
    assert.deepEqual(f.log(), []);
});
