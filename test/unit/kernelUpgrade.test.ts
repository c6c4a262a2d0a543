/**
 * KernelUpgrade: the topology's `kernel:` block (validated with file:line:col), the component's
 * structure under mocks (only hosts that ask; HostPrep after it; one host at a time; the verify's
 * bounded dials), and its scripts run under each host shell on a fake host: fake package managers,
 * boot tools, modinfo and ip first in PATH, recording their calls, and a fake os-release.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { named, recorded, root, settle, tunnelHostsOf, valueOf } from "./mocks";
import { HOST_SHELLS, HostShell, runIn } from "./hostShells";
import { JUMP_KEY, K1_KEY, K2_KEY } from "./sshFixtures";
import { FouTopology } from "../../components/fouTopology";
import { stepProgram } from "../../components/host";
import { ELREPO, KernelPaths, fouUsableCheck, kernelInstallScripts, kernelPaths, kernelVerifyScript, verifyDials } from "../../components/kernelUpgrade";
import { FouInputError } from "../../lib/validate";
import { Topology, TopologyOptions, parseTopology } from "../../topology";

const SSH: TopologyOptions = { kind: "ssh" };
const KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGZ0AAABEADtest\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";

/** A YAML text written indented in the test: drops the first line break and the common indentation. */
function y(strings: TemplateStringsArray, ...values: unknown[]): string {
    const raw = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ""), "");
    const lines = raw.replace(/^\n/, "").replace(/\n[ ]*$/, "\n").split("\n");
    const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
    return lines.map((l) => l.slice(indent)).join("\n");
}

function problems(text: string, options: TopologyOptions = SSH): string[] {
    try {
        parseTopology(text, "t.yaml", options);
    } catch (e) {
        assert.ok(e instanceof FouInputError, `not a FouInputError: ${String(e)}`);
        return e.problems;
    }
    assert.fail(`no error for:\n${text}`);
}

/** Asserts that one problem is `<at>: <rule>`, at being `t.yaml:line:col: path`. */
function rejects(text: string, at: string, rule: RegExp, options: TopologyOptions = SSH): void {
    const found = problems(text, options);
    assert.ok(found.some((p) => p.startsWith(at + ": ") && rule.test(p.slice(at.length + 2))), `expected "${at}: ${rule}" among:\n  ${found.join("\n  ")}`);
}

/** Two ssh hosts, k1 with the given kernel block (indented under it), and a tunnel. */
const withKernel = (kernel: string) =>
    `hosts:\n  - name: k1\n    ssh: {address: 198.51.100.171, hostKey: ${K1_KEY}}\n    kernel:\n${kernel
        .split("\n")
        .map((l) => `      ${l}`)
        .join("\n")}\n  - name: k2\n    ssh: {address: 198.51.100.172, hostKey: ${K2_KEY}}\ntunnels:\n  - hosts: [k1, k2]\n`;

// ---------------------------------------------------------------------------------------------
// The topology's kernel block

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

// ---------------------------------------------------------------------------------------------
// The component under mocks

/** Each resource's options as declared (the mocks do not see them). */
const options = new Map<string, pulumi.CustomResourceOptions>();
const recordOptions: pulumi.ResourceTransformation = (t) => {
    options.set(t.name, t.opts);
    return undefined;
};

const MESH = y`
    hosts:
      - name: k1
        ssh: {address: 198.51.100.171, user: admin, hostKey: ${K1_KEY}}
        kernel: {upgrade: true, rebootTimeout: 300}
      - name: k2
        ssh: {address: 198.51.100.172, hostKey: ${K2_KEY}}
        kernel: {upgrade: false}
      - name: k3
        ssh: {address: 198.51.100.173, hostKey: ${JUMP_KEY}}
        kernel:
          upgrade: true
          package: linux-image-6.12-amd64
          repository: "deb http://198.51.100.1:8080/ bookworm-fou main"
          key: |
${KEY.trim().split("\n").map((l) => `                ${l}`).join("\n")}
    tunnels:
      - hosts: [k1, k2]
      - hosts: [k2, k3]
        protocol: sit
        port: 5556
      - hosts: [k1, k3]
`;

let topology: Topology;
let mesh: FouTopology;
before(async () => {
    topology = parseTopology(MESH, "mesh.yaml", SSH);
    const hosts = tunnelHostsOf(topology, (h, t) => ({ ...t, connection: { host: h.ssh!.address, user: h.ssh!.user }, sudo: h.ssh!.sudo }));
    const mine = new pulumi.ComponentResource("test:index:KernelRoot", "kernel-root", {}, { parent: root, transformations: [recordOptions] });
    mesh = new FouTopology("fou", { topology, hosts }, { parent: mine });
    await valueOf(mesh.kernels);
    await valueOf(mesh.checks);
    await settle();
});


test("only hosts with upgrade: true get a KernelUpgrade, named <topology>-<host>-kernel-upgrade, of two steps", () => {
    const ups = recorded.filter((r) => r.type === "fou:index:KernelUpgrade").map((r) => r.name);
    assert.deepEqual(ups, ["fou-k1-kernel-upgrade", "fou-k3-kernel-upgrade"]);
    assert.equal(named("fou-k1-kernel-upgrade").parent, "fou");
    for (const h of ["k1", "k3"]) {
        const kids = recorded.filter((r) => r.parent === `fou-${h}-kernel-upgrade`).map((r) => r.name).sort();
        assert.deepEqual(kids, [`fou-${h}-kernel-upgrade-install`, `fou-${h}-kernel-upgrade-install-probe`, `fou-${h}-kernel-upgrade-verify`]);
    }
    assert.ok(!recorded.some((r) => r.name.startsWith("fou-k2-kernel")));
});

test("the install goes through stdin and sudo; its delete removes only its files; the verify has no delete", () => {
    const install = named("fou-k1-kernel-upgrade-install").inputs;
    assert.equal(install.createLine, "sudo -n /bin/sh -s create");
    assert.equal(install.update, "sudo -n /bin/sh -s create 'drift-probe-fou-k1-kernel-upgrade-install-probe-id'");
    assert.match(install.create, /\n {2}modinfo ipip >\/dev\/null 2>&1 \|\| kmiss="\$kmiss ipip"\n/);
    assert.match(install.delete, /^set -eu\nrm -f '\/var\/lib\/fou-tunnel\/fou-tunnel\.unit\/fou-k1-kernel-upgrade-install\.kernel' '\/var\/lib\/fou-tunnel\/fou-tunnel\.unit\/fou-k1-kernel-upgrade-install\.log'\n/);
    assert.doesNotMatch(install.delete, /reboot|apt-get|yum|dnf|grub/);
    assert.match(named("fou-k3-kernel-upgrade-install").inputs.create, /\n {2}modinfo sit .*\n {2}modinfo ipip /);
    // k3's repository and key reach its script; the key is dearmored for signed-by.
    const k3 = named("fou-k3-kernel-upgrade-install").inputs.create;
    assert.match(k3, /line='deb \[signed-by=\/etc\/apt\/keyrings\/fou-tunnel-kernel\.gpg\] http:\/\/198\.51\.100\.1:8080\/ bookworm-fou main'/);
    assert.ok(k3.includes(KEY.trim()));
    const verify = named("fou-k1-kernel-upgrade-verify").inputs;
    assert.equal(verify.deleteLine, undefined);
    assert.equal(verify.delete, undefined);
    assert.match(verify.create, /kernelBefore=/);
    // The probe looks at fou on the running kernel.
    assert.match(named("fou-k1-kernel-upgrade-install-probe").inputs.check, /fou_missing/);
});

test("the verify re-runs with the install: its triggers hold the install's stdout", () => {
    const triggers = named("fou-k1-kernel-upgrade-verify").inputs.triggers as string[];
    assert.ok(triggers.some((t) => /instance=fou-k1-kernel-upgrade-install$/.test(t)), JSON.stringify(triggers));
    assert.deepEqual(named("fou-k1-kernel-upgrade-verify").dependsOn.filter((d) => d.includes("kernel")), ["fou-k1-kernel-upgrade-install"]);
});

test("HostPrep and everything else on an upgraded host wait for its verify", () => {
    assert.deepEqual(named("fou-k1-prep").dependsOn, ["fou-k1-kernel-upgrade"]);
    assert.ok(named("fou-k1-prep-kernel").dependsOn.includes("fou-k1-kernel-upgrade-verify"));
    assert.ok(named("fou-k3-prep-kernel").dependsOn.includes("fou-k3-kernel-upgrade-verify"));
    assert.ok(named("fou-k1-k2-k1-link").dependsOn.includes("fou-k1-kernel-upgrade-verify"));
    assert.deepEqual(named("fou-k2-prep").dependsOn, []);
    assert.ok(!named("fou-k2-prep-kernel").dependsOn.some((d) => d.includes("kernel-upgrade")));
});

test("upgrades are chained: one host reboots at a time", () => {
    assert.deepEqual(named("fou-k1-kernel-upgrade-install").dependsOn, []);
    assert.deepEqual(named("fou-k3-kernel-upgrade-install").dependsOn, ["fou-k1-kernel-upgrade-verify"]);
});

test("the verify's connection has bounded dials and a hard create timeout", async () => {
    assert.deepEqual(verifyDials(300), { perDialTimeout: 10, dialErrorLimit: 65, createTimeout: "420s" });
    assert.deepEqual(verifyDials(600), { perDialTimeout: 10, dialErrorLimit: 125, createTimeout: "720s" });
    // The connection is a secret: the mocks see it wrapped.
    const connection = (name: string) => {
        const c = named(name).inputs.connection;
        return c.value ?? c;
    };
    const conn = connection("fou-k1-kernel-upgrade-verify");
    assert.equal(conn.perDialTimeout, 10);
    assert.equal(conn.dialErrorLimit, 65);
    assert.equal(conn.host, "198.51.100.171");
    assert.equal(options.get("fou-k1-kernel-upgrade-verify")?.customTimeouts?.create, "420s");
    assert.equal(connection("fou-k3-kernel-upgrade-verify").dialErrorLimit, 125);
    // The install's own dials are the host's (here the command SDK's default of 10).
    assert.equal(connection("fou-k1-kernel-upgrade-install").dialErrorLimit, 10);
    assert.equal(options.get("fou-k1-kernel-upgrade-install")?.customTimeouts?.create, "30m");
});

test("kernels: before and after per upgraded host", async () => {
    assert.deepEqual(Object.keys(await valueOf(mesh.kernels)), ["k1", "k3"]);
    assert.deepEqual(Object.keys(mesh.kernelUpgrades), ["k1", "k3"]);
});

test("a topology without kernel blocks declares no KernelUpgrade", async () => {
    const t = parseTopology(MESH.replace(/\n\s*kernel:[\s\S]*?(?=\n {2}- name|\ntunnels)/g, ""), "plain.yaml", SSH);
    assert.ok(t.hosts.every((h) => h.kernel === undefined));
    const hosts = Object.fromEntries(t.hosts.map((h) => [h.name, { name: h.name, underlayAddress: h.address!, device: "eth0", connection: { host: h.ssh!.address } }]));
    const plain = new FouTopology("plain", { topology: t, hosts }, { parent: root });
    assert.deepEqual(await valueOf(plain.kernels), {});
    await settle();
    assert.ok(!recorded.some((r) => r.name.startsWith("plain-") && r.name.includes("kernel-upgrade")));
});

// ---------------------------------------------------------------------------------------------
// The scripts on a fake host

const dir = mkdtempSync(path.join(tmpdir(), "fou-kernel-"));
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

interface FakeHost {
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

interface Fake {
    readonly root: string;
    readonly paths: KernelPaths;
    readonly env: NodeJS.ProcessEnv;
    /** Shell functions that call the fakes by path. */
    readonly wrap: string;
    /** What the effectful fakes were called with, one call a line. */
    log(): string[];
}

const FOU_OK = { fou: "udp_tunnel,ip6_udp_tunnel,ip_tunnel", ipip: "ip_tunnel,tunnel4", sit: "ip_tunnel,tunnel4", ip_tunnel: "" };
const NO_FOU = { ipip: "ip_tunnel,tunnel4", sit: "ip_tunnel,tunnel4", ip_tunnel: "" };

function fakeHost(h: FakeHost): Fake {
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
function eachShell(name: string, fn: (shell: HostShell) => void): void {
    for (const shell of HOST_SHELLS) test(`${name} (${shell.name})`, () => fn(shell));
}

function install(shell: HostShell, f: Fake, o: { modules?: string[]; package?: string; repository?: string; key?: string } = {}) {
    const s = kernelInstallScripts({ modules: o.modules ?? ["fou", "ipip"], package: o.package, repository: o.repository, key: o.key, paths: f.paths, label: "k1: kernel upgrade" });
    return runIn(shell, `set -- create\n${f.wrap}\n${stepProgram(s)}`, { env: f.env });
}

/** The reboot and the SSH listener, after any install that reboots. */
const REBOOT = ["systemd-run --on-active=3 --unit=fou-tunnel-reboot systemctl reboot"];
const OUT = (old: string, to: string) => `kernel=${old}\naction=reboot\nto=${to}\nbootId=11111111-2222-3333-4444-555555555555\n`;

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

eachShell("a repository on a yum host: an error, nothing installed", (shell) => {
    const f = fakeHost({ os: "centos7", release: "3.10.0-1160.el7.x86_64", modules: NO_FOU, ipFou: true, boot: [] });
    const r = install(shell, f, { repository: "deb http://198.51.100.1/ b main" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kernel\.repository is an apt source line, and this host is centos 7 \(yum\/dnf\): nothing was installed/);
    assert.deepEqual(f.log(), []);
});

eachShell("a failing package manager: its output's end on stderr, no reboot", (shell) => {
    const f = fakeHost({ os: "debian12", release: "6.1.0-57-amd64", modules: NO_FOU, ipFou: true, boot: ["6.1.0-57-amd64"] });
    writeFileSync(path.join(f.root, "bin", "apt-get"), "#!/bin/sh\necho 'E: Unable to locate package linux-image-6.12-amd64'\nexit 100\n", { mode: 0o755 });
    const r = install(shell, f);
    assert.equal(r.code, 100);
    assert.match(r.stderr, /^fou-tunnel: k1: kernel upgrade: apt-get update failed \(exit 100\); the end of .*k1\.log:\n\+ apt-get update\nE: Unable to locate package/);
});

function verify(shell: HostShell, f: Fake) {
    return runIn(shell, `set -- create\n${f.wrap}\n${stepProgram({ create: kernelVerifyScript(f.paths, "k1: kernel upgrade") })}`, { env: f.env });
}
const PENDING = "pending=1\nold=6.1.0-57-amd64\nbootId=11111111-2222-3333-4444-555555555555\nnew=6.12.12-amd64\n";
const NEW_BOOT = "99999999-2222-3333-4444-555555555555";

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

test("every script passes shellcheck -s sh", () => {
    const paths = kernelPaths("/var/lib/fou-tunnel/p.s/k1.kernel", "/var/lib/fou-tunnel/p.s/k1.log");
    const programs: Record<string, string> = {
        install: stepProgram(kernelInstallScripts({ modules: ["fou", "ipip", "sit"], paths, label: "k1: kernel upgrade" })),
        "install-repo": stepProgram(kernelInstallScripts({ modules: ["fou"], package: "linux-image-6.12-amd64", repository: "deb http://198.51.100.1/ b main", key: KEY, paths })),
        "install-repo-nokey": stepProgram(kernelInstallScripts({ modules: ["fou", "ip_gre"], repository: "deb http://198.51.100.1/ b main", paths })),
        verify: stepProgram({ create: kernelVerifyScript(paths, "k1: kernel upgrade") }),
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
