/**
 * HostPrep's kernel step as a preflight for machines that exist already: run with fake
 * modinfo/ip/modprobe and a fake kernel release and /etc/os-release, it names the fix for what it
 * finds — the kernel (ELRepo's kernel-ml on CentOS/RHEL 7, the distribution's current kernel on
 * Debian and Ubuntu), an ip without `ip fou`, the ip_tunnel module fou needs — all at once. Each
 * test runs once under each host shell (dash, bash, busybox sh), on a fake host of its own.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { HOST_SHELLS, HostShell, runIn } from "./hostShells";
import { firewallObject } from "../../components/firewall";
import { kernelScripts } from "../../components/hostPrep";
import { HostPaths, pathsUnder } from "../../components/hostPaths";
import { standalone } from "../../components/host";

const dir = mkdtempSync(path.join(tmpdir(), "fou-preflight-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const OS = {
    centos7: 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n',
    debian12: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    ubuntu22: 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n',
    rocky9: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n',
    unknown: 'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
};

interface Host {
    os: keyof typeof OS | "none";
    release: string;
    /** Modules modinfo knows, with what its `depends:` line says ("builtin": built into the kernel). */
    modules: Record<string, string>;
    /** Old iproute2: no `ip fou`, no encap for links. */
    oldIp?: boolean;
    /** The running kernel's modules directory exists. */
    moduleDir?: boolean;
}

/** Registers the test NAME once per host shell: `NAME (dash)`, `NAME (bash)`, `NAME (busybox sh)`. */
function eachShell(name: string, fn: (shell: HostShell) => void): void {
    for (const shell of HOST_SHELLS) test(`${name} (${shell.name})`, () => fn(shell));
}

/** Runs TEXT under SHELL; a failure fails the test (the text is expected to exit 0). */
function sh0(shell: HostShell, text: string): string {
    const r = runIn(shell, text);
    assert.equal(r.code, 0, `${shell.name}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
}

/** The kernel step's host paths under a fake host's ROOT, the distribution read from the file OSRELEASE. */
function fakePaths(root: string, osrelease: string): HostPaths {
    return pathsUnder(root, { kernelRelease: path.join(root, "osrelease"), osRelease: osrelease, stateRoot: path.join(root, "state") });
}

/** Runs the kernel step's create under SHELL on a fresh fake host; returns stderr+stdout and the exit status. */
function prep(shell: HostShell, h: Host, modules = ["fou", "ipip"]): { out: string; code: number } {
    const root = mkdtempSync(path.join(dir, "host-"));
    const osRelease = path.join(root, "os-release");
    if (h.os !== "none") writeFileSync(osRelease, OS[h.os]);
    if (h.moduleDir ?? true) mkdirSync(path.join(root, "lib/modules", h.release), { recursive: true });
    const release = path.join(root, "osrelease");
    writeFileSync(release, `${h.release}\n`);
    // What kmod's modinfo prints (a module's lines padded to one column; a builtin has no depends).
    const known = Object.entries(h.modules)
        .map(([m, deps]) =>
            deps === "builtin"
                ? `${m}) printf 'name:           %s\\nfilename:       (builtin)\\nlicense:        GPL\\n' ${m} ;;`
                : `${m}) printf 'filename:       /lib/modules/x/%s.ko\\nlicense:        GPL\\ndepends:        %s\\nintree:         Y\\nname:           %s\\n' ${m} '${deps}' ${m} ;;`,
        )
        .join("\n");
    const fakes = [
        "hostname() { echo web1; }",
        `modinfo() { [ "$#" = 1 ] || { echo "modinfo: one module at a time here" >&2; return 2; }; case "$1" in\n${known}\n*) echo "modinfo: ERROR: Module $1 not found." >&2; return 1 ;; esac; }`,
        "modprobe() { :; }",
        "dpkg() { echo amd64; }",
        h.oldIp
            ? `ip() { case "$1" in -V) echo 'ip utility, iproute2-ss130716' ;; *) echo 'Object "'$1'" is unknown, try "ip help".' >&2 ;; esac; return 255; }`
            : `ip() { case "$1 $2" in "fou help") echo 'Usage: ip fou add port PORT { ipproto PROTO  | gue }' >&2 ;; "link help") echo '[ encap { fou | gue | none } ]' >&2 ;; esac; return 255; }`,
    ].join("\n");
    const create = standalone(kernelScripts(modules, path.join(root, "state", "prep.modules"), undefined, fakePaths(root, osRelease)));
    const out = sh0(shell, `${fakes}\n(\n${create}\n) 2>&1; echo "exit=$?"`);
    return { out: out.replace(/exit=\d+\n$/, ""), code: Number(/exit=(\d+)\n$/.exec(out)?.[1]) };
}

const GOOD = { fou: "udp_tunnel,ip6_udp_tunnel,ip_tunnel", ipip: "ip_tunnel,tunnel4", ip_tunnel: "" };

eachShell("a good host passes and loads the modules", (shell) => {
    const r = prep(shell, { os: "debian12", release: "6.1.0-57-amd64", modules: GOOD });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^kernel=6\.1\.0-57-amd64\nmodules=fou ipip\n$/m);
});

eachShell("CentOS 7: Linux 3.10 → ELRepo's kernel-ml, and its old ip → upgrade iproute; both at once", (shell) => {
    const r = prep(shell, { os: "centos7", release: "3.10.0-1160.el7.x86_64", modules: { ipip: "tunnel4,ip_tunnel", ip_tunnel: "" }, oldIp: true });
    assert.equal(r.code, 1);
    const lines = r.out.trim().split("\n");
    assert.equal(lines.length, 2, r.out);
    assert.equal(
        lines[0],
        "fou-tunnel: web1 runs Linux 3.10.0-1160.el7.x86_64, which has no FOU support (needs 3.18 or newer): upgrade the kernel and reboot; " +
            "on CentOS Linux 7 (Core) (Linux 3.10 has no fou): install ELRepo's mainline kernel: rpm --import https://www.elrepo.org/RPM-GPG-KEY-elrepo.org; " +
            "yum install https://www.elrepo.org/elrepo-release-7.el7.elrepo.noarch.rpm; yum --enablerepo=elrepo-kernel install kernel-ml; grub2-set-default 0; then reboot",
    );
    assert.equal(
        lines[1],
        "fou-tunnel: web1: its ip (ip utility, iproute2-ss130716) has no ip fou or no link encapsulation: upgrade iproute2 to 3.18 or newer; " +
            "on CentOS Linux 7 (Core): yum update iproute (7.5 and later ship iproute 4.11, which has ip fou), or build iproute2 4.x from kernel.org and install it",
    );
});

eachShell("Debian without fou: the current kernel package of its architecture", (shell) => {
    const r = prep(shell, { os: "debian12", release: "6.1.0-57-amd64", modules: { ipip: "ip_tunnel,tunnel4", ip_tunnel: "" } });
    assert.equal(r.code, 1);
    assert.equal(
        r.out,
        "fou-tunnel: web1 runs Linux 6.1.0-57-amd64 without the fou module: install a kernel built with it (fou needs CONFIG_NET_FOU) and reboot; " +
            "on Debian GNU/Linux 12 (bookworm): apt-get update && apt-get install linux-image-amd64 (Debian's current kernel, which has fou), then reboot into it\n",
    );
});

eachShell("Ubuntu without fou: linux-generic, or the cloud kernel's modules-extra", (shell) => {
    const r = prep(shell, { os: "ubuntu22", release: "5.15.0-1051-aws", modules: { ipip: "ip_tunnel,tunnel4", ip_tunnel: "" } });
    assert.equal(r.code, 1);
    assert.match(r.out, /^fou-tunnel: web1 runs Linux 5\.15\.0-1051-aws without the fou module: .* and reboot; on Ubuntu 22\.04\.4 LTS: apt-get update && apt-get install linux-generic \(cloud kernels keep fou in linux-modules-extra-5\.15\.0-1051-aws\), then reboot into it$/m);
});

eachShell("RHEL-like 8 and later: kernel-modules-extra; an unknown distribution: the general advice only", (shell) => {
    const rocky = prep(shell, { os: "rocky9", release: "5.14.0-362.el9.x86_64", modules: { ipip: "ip_tunnel,tunnel4", ip_tunnel: "" } });
    assert.match(rocky.out, /reboot; on Rocky Linux 9\.3 \(Blue Onyx\): dnf install kernel-modules-extra \(and the newest kernel\), then reboot$/m);
    const alpine = prep(shell, { os: "unknown", release: "6.6.7-0-virt", modules: { ipip: "ip_tunnel,tunnel4" } });
    assert.equal(alpine.out, "fou-tunnel: web1 runs Linux 6.6.7-0-virt without the fou module: install a kernel built with it (fou needs CONFIG_NET_FOU) and reboot\n");
    const none = prep(shell, { os: "none", release: "6.6.7-0-virt", modules: { ipip: "" } });
    assert.equal(none.code, 1);
    assert.match(none.out, /without the fou module: install a kernel built with it \(fou needs CONFIG_NET_FOU\) and reboot$/m);
});

eachShell("fou built on ip_tunnel, but ip_tunnel missing: the modules are incomplete", (shell) => {
    const r = prep(shell, { os: "debian12", release: "6.1.0-57-amd64", modules: { fou: "udp_tunnel,ip_tunnel", ipip: "tunnel4" } });
    assert.equal(r.code, 1);
    assert.match(r.out, /^fou-tunnel: web1: Linux 6\.1\.0-57-amd64 lacks the ip_tunnel module that fou is built on: its modules are incomplete; reinstall the kernel package; on Debian/m);
});

eachShell("fou not built on ip_tunnel: that kernel cannot encapsulate in FOU (the wording the tests know)", (shell) => {
    const r = prep(shell, { os: "debian12", release: "6.1.0-57-amd64", modules: { fou: "udp_tunnel", ipip: "tunnel4", ip_tunnel: "" } });
    assert.equal(r.code, 1);
    assert.match(r.out, /^fou-tunnel: web1: the fou module of Linux 6\.1\.0-57-amd64 does not depend on ip_tunnel; this kernel cannot encapsulate tunnels in FOU/m);
});

eachShell("a kernel upgraded without a reboot: its modules are not there", (shell) => {
    const r = prep(shell, { os: "debian12", release: "6.1.0-56-amd64", modules: {}, moduleDir: false });
    assert.equal(r.code, 1);
    assert.equal(r.out.trim().split("\n").length, 1, r.out);
    assert.match(r.out, /^fou-tunnel: web1 runs Linux 6\.1\.0-56-amd64, whose modules are not installed \(no \/lib\/modules\/6\.1\.0-56-amd64: upgraded without a reboot\?\): reboot into the installed kernel, or on Debian/m);
});

eachShell("an old ip on Debian: apt-get install iproute2", (shell) => {
    const r = prep(shell, { os: "debian12", release: "6.1.0-57-amd64", modules: GOOD, oldIp: true });
    assert.equal(r.code, 1);
    assert.match(r.out, /^fou-tunnel: web1: its ip \(ip utility, iproute2-ss130716\) has no ip fou or no link encapsulation: upgrade iproute2 to 3\.18 or newer; on Debian GNU\/Linux 12 \(bookworm\): apt-get install iproute2$/m);
});

eachShell("fou built into the kernel passes: a builtin has no depends to check", (shell) => {
    const r = prep(shell, { os: "debian12", release: "6.1.0-57-amd64", modules: { fou: "builtin", ipip: "ip_tunnel,tunnel4", ip_tunnel: "" } });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^kernel=6\.1\.0-57-amd64$/m);
});

eachShell("two stacks on one host: a module the first loaded, still used by the second when the first goes, goes with the last", (shell) => {
    const root = mkdtempSync(path.join(dir, "stacks-"));
    mkdirSync(path.join(root, "lib/modules/6.1.0-57-amd64"), { recursive: true });
    writeFileSync(path.join(root, "osrelease"), "6.1.0-57-amd64\n");
    const fakes = [
        `R=${root}`,
        "hostname() { echo web1; }",
        "dpkg() { echo amd64; }",
        `modinfo() { printf 'filename:       /x/%s.ko\\ndepends:        ip_tunnel\\nname:           %s\\n' "$1" "$1"; }`,
        'modprobe() { if [ "$1" = -r ]; then rm -rf "$R/sys/module/$2"; echo "unload $2" >> "$R/log"; else mkdir -p "$R/sys/module/$1"; echo "load $1" >> "$R/log"; fi; }',
        `ip() { case "$*" in "fou show") cat "$R/fou" 2>/dev/null ;; "fou help") echo 'ip fou add' ;; "link help ipip") echo encap ;; esac; return 0; }`,
    ].join("\n");
    const sh = (s: string) => sh0(shell, `${fakes}\n(\n${s}\n) 2>&1`);
    const log = () => readFileSync(path.join(root, "log"), "utf8").trim().split("\n");
    const paths = fakePaths(root, `${root}/none`);
    const a = kernelScripts(["fou", "ipip"], `${root}/state/fou-tunnel.a/fou-s2-prep-kernel.modules`, undefined, paths);
    const b = kernelScripts(["fou", "ip_gre"], `${root}/state/fou-tunnel.b/fou-s2-prep-kernel.modules`, undefined, paths);
    sh(standalone(a));
    sh(standalone(b));
    assert.deepEqual(log(), ["load fou", "load ipip", "load ip_gre"]);
    writeFileSync(path.join(root, "fou"), "port 6666 ipproto 47\n"); // stack B's port
    sh(standalone(a, "delete"));
    assert.deepEqual(log().slice(3), ["unload ipip"], "fou stays for B's port");
    assert.equal(readFileSync(path.join(root, "state/handed-over.modules"), "utf8"), "fou\n");
    writeFileSync(path.join(root, "fou"), ""); // B's port deleted before its kernel step
    sh(standalone(b, "delete"));
    assert.deepEqual(log().slice(4), ["unload ip_gre", "unload fou"]);
    assert.throws(() => readFileSync(path.join(root, "state/handed-over.modules")), /ENOENT/);
    assert.throws(() => readFileSync(path.join(root, "state")), /ENOENT/, "the state directory is gone");
});

eachShell("what a module pulls in is unloaded with it, and what that pulled in too (fou6 brings fou, which brings udp_tunnel)", (shell) => {
    const root = mkdtempSync(path.join(dir, "deps-"));
    mkdirSync(path.join(root, "lib/modules/6.1.0-57-amd64"), { recursive: true });
    mkdirSync(path.join(root, "sys/module/kernel"), { recursive: true }); // a built-in one: never listed
    writeFileSync(path.join(root, "osrelease"), "6.1.0-57-amd64\n");
    // As kmod does: modprobe loads the dependencies first; modprobe -r refuses a module another
    // loaded module depends on, and takes the module's own unused dependencies, not theirs.
    const fakes = [
        `R=${root}`,
        "hostname() { echo web1; }",
        "dpkg() { echo amd64; }",
        `modinfo() { printf 'filename:       /x/%s.ko\\ndepends:        %s\\nname:           %s\\n' "$1" "$(deps "$1" | tr ' ' ,)" "$1"; }`,
        'deps() { case $1 in fou6) echo "fou ip6_tunnel" ;; fou) echo "ip_tunnel udp_tunnel ip6_udp_tunnel" ;; ip6_tunnel) echo tunnel6 ;; esac; }',
        'load() { for x in $(deps "$1"); do load "$x"; done; [ -d "$R/sys/module/$1" ] || { mkdir -p "$R/sys/module/$1"; echo "load $1" >> "$R/log"; }; }',
        'held() { for u in "$R"/sys/module/*; do case " $(deps "${u##*/}") " in *" $1 "*) return 0 ;; esac; done; return 1; }',
        'unload() { rm -rf "$R/sys/module/$1"; echo "unload $1" >> "$R/log"; }',
        'modprobe() { if [ "$1" != -r ]; then load "$1"; return; fi',
        '  if held "$2"; then echo "modprobe: FATAL: Module $2 is in use." >&2; return 1; fi',
        '  unload "$2"; for y in $(deps "$2"); do if [ -d "$R/sys/module/$y" ] && ! held "$y"; then unload "$y"; fi; done; }',
        `ip() { case "$*" in "fou help") echo 'ip fou add' ;; "link help ipip") echo encap ;; esac; return 0; }`,
    ].join("\n");
    const sh = (s: string) => sh0(shell, `${fakes}\n(\n${s}\n) 2>&1`);
    const loaded = () => readdirSync(path.join(root, "sys/module")).sort();
    const step = kernelScripts(["fou", "fou6", "ip6_tunnel"], `${root}/state/fou-tunnel.a/fou-k1-prep-kernel.modules`, undefined, fakePaths(root, `${root}/none`));
    const created = sh(standalone(step));
    assert.match(created, /^modules=fou fou6 ip6_tunnel$/m, created);
    assert.deepEqual(loaded(), ["fou", "fou6", "ip6_tunnel", "ip6_udp_tunnel", "ip_tunnel", "kernel", "tunnel6", "udp_tunnel"]);
    // Listed: each module after what came with it, so that it goes first.
    const list = readFileSync(`${root}/state/fou-tunnel.a/fou-k1-prep-kernel.modules`, "utf8").trim().split("\n");
    assert.ok(list.indexOf("udp_tunnel") < list.indexOf("fou") && list.indexOf("fou") < list.indexOf("fou6"), list.join(" "));
    assert.ok(list.indexOf("tunnel6") < list.indexOf("fou6") && !list.includes("kernel"), list.join(" "));
    // Run again: nothing is loaded or unloaded, the held dependencies stay.
    const before = readFileSync(path.join(root, "log"), "utf8");
    sh(standalone(step));
    assert.equal(readFileSync(path.join(root, "log"), "utf8"), before);
    const deleted = sh(standalone(step, "delete"));
    assert.deepEqual(loaded(), ["kernel"], deleted);
    assert.throws(() => readFileSync(path.join(root, "state")), /ENOENT/, "the state directory is gone");
});

eachShell("two stacks' firewalls: nf_tables, loaded for the first table, is unloaded with the last table of anyone", (shell) => {
    const root = mkdtempSync(path.join(dir, "nft-"));
    const fakes = [
        `R=${root}`,
        "hostname() { echo web1; }",
        // Tables are files in $R/tables; listing them (or loading rules) needs the module, as the kernel's nft does.
        'nft() { [ -d "$R/sys/module/nf_tables" ] || mkdir -p "$R/sys/module/nf_tables"; case "$1 $2" in',
        '  "-f -") t=$(sed -n "s/^table inet \\([a-z0-9_]*\\) {$/\\1/p"); touch "$R/tables.$t" ;;',
        '  "list tables") for f in "$R"/tables.*; do [ -e "$f" ] && echo "table inet ${f##*.}"; done; true ;;',
        '  "list table") [ -e "$R/tables.$4" ] && echo "table inet $4 { comment \\"x\\" }" ;;',
        '  "delete table") rm -f "$R/tables.$4" ;;',
        "esac; }",
        'modprobe() { [ "$1" = -r ] && rm -rf "$R/sys/module/$2" && echo "unload $2" >> "$R/log"; }',
    ].join("\n");
    const sh = (s: string) => sh0(shell, `${fakes}\n(\nset -eu\n${s}\n) 2>&1`);
    const paths = pathsUnder(root, { stateRoot: path.join(root, "state") });
    const a = firewallObject("fou_a", [{ port: 5555, peers: ["198.51.100.162"] }], paths);
    const b = firewallObject("fou_b", [{ port: 6666, peers: ["198.51.100.162"] }], paths);
    sh(a.apply);
    assert.ok(readFileSync(path.join(root, "state/nf_tables.loaded")) !== undefined, "the first table notes that it loaded nf_tables");
    sh(b.apply);
    sh(a.remove!);
    assert.throws(() => readFileSync(path.join(root, "log")), /ENOENT/, "B's table still needs it");
    sh(b.remove!);
    assert.equal(readFileSync(path.join(root, "log"), "utf8"), "unload nf_tables\n");
    assert.throws(() => readFileSync(path.join(root, "state/nf_tables.loaded")), /ENOENT/);
    // Loaded before any stack (another tool's table, say): never unloaded.
    mkdirSync(path.join(root, "sys/module/nf_tables"), { recursive: true });
    sh(a.apply);
    sh(a.remove!);
    assert.equal(readFileSync(path.join(root, "log"), "utf8"), "unload nf_tables\n");
});
