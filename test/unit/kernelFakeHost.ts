/**
 * A fake host for the kernel upgrade's scripts: a directory with a fake os-release, /boot,
 * /sys/module and state, and fake package managers, boot tools, modinfo and ip first in PATH that
 * record their calls. Each host shell runs the install and verify scripts against it. The
 * directory of real tools is made when this module loads and removed after the test file.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { HOST_SHELLS, HostShell, runIn } from "./hostShells";
import { stepProgram } from "../../components/host";
import { KernelPaths, kernelInstallScripts, kernelPaths, kernelVerifyScripts } from "../../components/kernelUpgrade";

export const dir = mkdtempSync(path.join(tmpdir(), "fou-kernel-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Real tools the scripts use beside the faked ones; PATH holds only these and the fakes. */
const TOOLS = ["sed", "head", "tr", "sort", "tail", "cat", "mkdir", "mv", "rm", "chmod", "grep", "touch", "sh", "env", ...new Set(HOST_SHELLS.map((s) => s.argv[0]))];
const tools = path.join(dir, "tools");
mkdirSync(tools);
for (const t of TOOLS) {
    const where = spawnSync("sh", ["-c", `command -v ${t}`], { encoding: "utf8" }).stdout.trim();
    assert.ok(where, `${t} is needed by the tests`);
    symlinkSync(where, path.join(tools, t));
}

const OS = {
    centos7: 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n',
    rocky9: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n',
    debian12: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    ubuntu22: 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n',
    alpine: 'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
};

export interface FakeHost {
    readonly os: keyof typeof OS;
    readonly release: string;
    /** Modules of the running kernel, with their `depends` ("builtin": built in). */
    readonly modules: Record<string, string>;
    /** `ip fou` works. */
    readonly ipFou: boolean;
    /** Kernels in /boot before. */
    readonly boot: string[];
    /** The kernel a kernel package install adds to /boot (none: it adds nothing). */
    readonly newRelease?: string;
    /** gpg is installed. */
    readonly gpg?: boolean;
    /** Units `systemctl is-active` says are active. */
    readonly active?: string[];
    readonly bootId?: string;
    /** The state file's text before the run. */
    readonly state?: string;
    /** fou is loaded already. */
    readonly fouLoaded?: boolean;
}

export interface Fake {
    readonly root: string;
    readonly paths: KernelPaths;
    readonly env: NodeJS.ProcessEnv;
    /** Shell functions that call the fakes by path. */
    readonly wrap: string;
    /** What the effectful fakes were called with, one call a line. */
    log(): string[];
}

export const FOU_OK = { fou: "udp_tunnel,ip6_udp_tunnel,ip_tunnel", ipip: "ip_tunnel,tunnel4", sit: "ip_tunnel,tunnel4", ip_tunnel: "" };
export const NO_FOU = { ipip: "ip_tunnel,tunnel4", sit: "ip_tunnel,tunnel4", ip_tunnel: "" };

export function fakeHost(h: FakeHost): Fake {
    const root = mkdtempSync(path.join(dir, "host-"));
    const bin = path.join(root, "bin");
    const log = path.join(root, "calls.log");
    for (const d of ["bin", "boot", "sys/module", "state", "etc/default"]) mkdirSync(path.join(root, d), { recursive: true });
    writeFileSync(path.join(root, "os-release"), OS[h.os]);
    writeFileSync(path.join(root, "osrelease"), `${h.release}\n`);
    writeFileSync(path.join(root, "boot_id"), `${h.bootId ?? "11111111-2222-3333-4444-555555555555"}\n`);
    writeFileSync(path.join(root, "etc/default/grub"), "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n");
    writeFileSync(log, "");
    for (const k of h.boot) writeFileSync(path.join(root, "boot", `vmlinuz-${k}`), "");
    if (h.ipFou) writeFileSync(path.join(root, "ip-fou"), "");
    if (h.fouLoaded) mkdirSync(path.join(root, "sys/module/fou"));
    const paths = kernelPaths(path.join(root, "state", "k1.kernel"), path.join(root, "state", "k1.log"), {
        kernelRelease: path.join(root, "osrelease"),
        bootId: path.join(root, "boot_id"),
        osRelease: path.join(root, "os-release"),
        boot: path.join(root, "boot"),
        sysModule: path.join(root, "sys/module"),
        keyrings: path.join(root, "etc/apt/keyrings"),
        sourcesList: path.join(root, "etc/apt/sources.list.d"),
        defaultGrub: path.join(root, "etc/default/grub"),
    });
    if (h.state !== undefined) writeFileSync(paths.state, h.state);
    const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
    const record = `printf '%s\\n' "\${0##*/}\${*:+ $*}" >> ${q(log)}`;
    // A kernel package's install adds the new kernel; an iproute install makes `ip fou` work.
    const installs = [
        `for a in "$@"; do case $a in kernel-ml|kernel-lt|linux-image-*|linux-generic*) ${h.newRelease ? `: > ${q(path.join(root, "boot", `vmlinuz-${h.newRelease}`))}` : ":"} ;; iproute|iproute2) : > ${q(path.join(root, "ip-fou"))} ;; esac; done`,
    ].join("\n");
    const modinfo = Object.entries(h.modules)
        .map(([m, deps]) => `  ${m}) case $f in filename) echo ${deps === "builtin" ? "'(builtin)'" : `/lib/modules/x/${m}.ko`} ;; depends) echo ${q(deps === "builtin" ? "" : deps)} ;; *) echo "name: ${m}" ;; esac ;;`)
        .join("\n");
    const fakes: Record<string, string> = {
        yum: `${record}\n${installs}`,
        dnf: `${record}\n${installs}`,
        rpm: `${record}\ncase $1 in -q) exit 1 ;; esac`,
        "apt-get": `printf '%s\\n' "apt-get $* (DEBIAN_FRONTEND=\${DEBIAN_FRONTEND-})" >> ${q(log)}\n${installs}`,
        grubby: `${record}\ncase $1 in --default-kernel) echo /boot/vmlinuz-${h.release} ;; esac`,
        "grub2-set-default": record,
        "grub2-mkconfig": record,
        "update-grub": record,
        "systemd-run": record,
        systemctl: `case $1 in is-active) case " ${(h.active ?? []).join(" ")} " in *" $3 "*) exit 0 ;; esac; exit 3 ;; esac\n${record}`,
        modprobe: record,
        reboot: record,
        nohup: record,
        dpkg: "echo amd64",
        modinfo: `f=; case $1 in --field=*) f=\${1#--field=}; shift ;; esac\ncase $1 in\n${modinfo}\n  *) echo "modinfo: ERROR: Module $1 not found." >&2; exit 1 ;;\nesac`,
        ip: `case "$1 $2" in "fou help") if [ -e ${q(path.join(root, "ip-fou"))} ]; then echo 'Usage: ip fou add port PORT { ipproto PROTO  | gue }' >&2; else echo 'Object "fou" is unknown, try "ip help".' >&2; fi ;; esac; exit 255`,
        ...(h.gpg ? { gpg: `${record}\nprintf 'DEARMORED:'; cat` } : {}),
    };
    for (const [name, body] of Object.entries(fakes)) writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return {
        root,
        paths,
        env: { PATH: `${bin}:${tools}`, LANG: "C" },
        // busybox sh runs its own applets (rpm, ip, modinfo, dpkg…) before PATH: functions come first.
        wrap: Object.keys(fakes)
            .filter((n) => /^[a-z0-9_]+$/.test(n))
            .map((n) => `${n}() { ${q(path.join(bin, n))} "$@"; }`)
            .join("\n"),
        log: () => readFileSync(log, "utf8").split("\n").filter((l) => l !== ""),
    };
}

/** Registers the test NAME once per host shell. */
export function eachShell(name: string, fn: (shell: HostShell) => void): void {
    for (const shell of HOST_SHELLS) test(`${name} (${shell.name})`, () => fn(shell));
}

export function install(shell: HostShell, f: Fake, o: { modules?: string[]; package?: string; repository?: string; key?: string } = {}) {
    const s = kernelInstallScripts({ modules: o.modules ?? ["fou", "ipip"], package: o.package, repository: o.repository, key: o.key, paths: f.paths, label: "k1: kernel upgrade" });
    return runIn(shell, `set -- create\n${f.wrap}\n${stepProgram(s)}`, { env: f.env });
}

/** The reboot and the SSH listener, after any install that reboots. */
export const REBOOT = ["systemd-run --on-active=3 --unit=fou-tunnel-reboot systemctl reboot"];
export const OUT = (old: string, to: string) => `kernel=${old}\naction=reboot\nto=${to}\nbootId=11111111-2222-3333-4444-555555555555\n`;

export function verify(shell: HostShell, f: Fake) {
    return runIn(shell, `set -- create\n${f.wrap}\n${stepProgram(kernelVerifyScripts(f.paths, "k1: kernel upgrade"))}`, { env: f.env });
}
export const PENDING = "pending=1\nold=6.1.0-57-amd64\nbootId=11111111-2222-3333-4444-555555555555\nnew=6.12.12-amd64\n";
export const NEW_BOOT = "99999999-2222-3333-4444-555555555555";
