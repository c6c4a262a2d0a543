import type { CommandScripts } from "./host";
import { labelLine, removeEmptyStateDirs } from "./hostState";
import { KERNEL_RELEASE, sh, shq } from "./shell";

/**
 * The scripts of {@link KernelUpgrade} (components/kernelUpgrade.ts): the install step's create
 * and delete, its drift check, and the verify step's create. Every path they read or write is a
 * parameter ({@link KernelPaths}), so tests run them on a fake host without rewriting them.
 */

/** Where the scripts look and write; defaults are the real host's. */
export interface KernelPaths {
    /** The running kernel's release (`uname -r`). */
    readonly kernelRelease: string;
    /** This boot's id: a different one after a reboot. */
    readonly bootId: string;
    /** The distribution: ID, ID_LIKE, VERSION_ID. */
    readonly osRelease: string;
    /** Where kernels are installed (`vmlinuz-<release>`). */
    readonly boot: string;
    /** Loaded modules (`<dir>/fou`). */
    readonly sysModule: string;
    /** The repository's key goes here: `fou-tunnel-kernel.gpg` (or `.asc` without gpg). */
    readonly keyrings: string;
    /** The repository line goes here: `fou-tunnel-kernel.list`. */
    readonly sourcesList: string;
    /** GRUB's settings (the default entry, for the verify's message). */
    readonly defaultGrub: string;
    /** GRUB's configuration on CentOS/RHEL 7 (the guide's `grub2-mkconfig -o`). */
    readonly grubCfg: string;
    /** The step's state file: `pending=`, `old=`, `bootId=`, `new=`. */
    readonly state: string;
    /** What the package managers printed (kept on the host; its tail is shown on a failure). */
    readonly log: string;
}

/** The host's own paths, with the state and log files of the step. */
export function kernelPaths(state: string, log: string, overrides: Partial<KernelPaths> = {}): KernelPaths {
    return {
        kernelRelease: KERNEL_RELEASE,
        bootId: "/proc/sys/kernel/random/boot_id",
        osRelease: "/etc/os-release",
        boot: "/boot",
        sysModule: "/sys/module",
        keyrings: "/etc/apt/keyrings",
        sourcesList: "/etc/apt/sources.list.d",
        defaultGrub: "/etc/default/grub",
        grubCfg: "/boot/grub2/grub.cfg",
        state,
        log,
        ...overrides,
    };
}

/** What the install step is asked to do on one host. */
export interface KernelInstallOptions {
    /** Modules the host's tunnels need besides fou (`ipip`, `sit`, `ip_gre`). */
    readonly modules: readonly string[];
    /** The kernel package; default per distribution. */
    readonly package?: string;
    /** An apt source line (`deb [options] URL suite components`). */
    readonly repository?: string;
    /** The repository's ASCII-armored public key. */
    readonly key?: string;
    readonly paths: KernelPaths;
    /** Names the host and step in messages: `k1: kernel upgrade`. */
    readonly label?: string;
}

/** ELRepo, as the guide uses it on CentOS 7 (and its el8/el9 builds on RHEL-family 8 and 9). */
export const ELREPO = {
    key: "https://www.elrepo.org/RPM-GPG-KEY-elrepo.org",
    keyV2: "https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org",
    release: (major: number) => `https://www.elrepo.org/elrepo-release-${major}.el${major}.elrepo.noarch.rpm`,
} as const;

/** The default kernel package on Debian 12 (bookworm): its 6.12 kernel, which has fou. */
export const BOOKWORM_KERNEL = "linux-image-6.12";

/** The file names under the keyrings and sources directories. */
export const APT_NAME = "fou-tunnel-kernel";

/**
 * The repository line with `signed-by=` naming KEYFILE: an existing signed-by option is
 * replaced, other options are kept, and a line without options gets `[signed-by=KEYFILE]`.
 */
export function withSignedBy(line: string, keyFile: string): string {
    const m = /^(deb(?:-src)?)\s+(?:\[([^\]]*)\]\s+)?(.*)$/.exec(line.trim());
    if (!m) return line;
    const options = (m[2] ?? "").split(/\s+/).filter((o) => o !== "" && !/^signed-by=/.test(o));
    return `${m[1]} [${[...options, `signed-by=${keyFile}`].join(" ")}] ${m[3]}`;
}

/**
 * Shell functions shared by the install step and its drift check: `fou_missing` sets `kmiss`
 * (what the running kernel lacks: fou, fou built on ip_tunnel, ip_tunnel, a tunnel module) and
 * `ipmiss` (`ip`, or `ip fou`); `rel` must hold the running release.
 */
function fouMissing(modules: readonly string[]): string {
    const others = modules.filter((m) => m !== "fou");
    // Names of a-z, 0-9 and _ only, written unquoted (one quoted word would read as a mistake).
    const bad = others.find((m) => !/^[a-z0-9_]{1,55}$/.test(m));
    if (bad !== undefined) throw new Error(`kernel upgrade: module name ${JSON.stringify(bad)} is not valid`);
    return [
        "fou_missing() {",
        "  kmiss=",
        '  if fn=$(modinfo --field=filename fou 2>/dev/null) && [ -n "$fn" ]; then',
        '    if [ "$fn" != "(builtin)" ]; then',
        '      deps=$(modinfo --field=depends fou 2>/dev/null || true)',
        '      case ",$deps," in',
        '        *,ip_tunnel,*) modinfo ip_tunnel >/dev/null 2>&1 || kmiss="$kmiss ip_tunnel" ;;',
        '        *) kmiss="$kmiss fou-on-ip_tunnel" ;;',
        "      esac",
        "    fi",
        "  else",
        '    kmiss="$kmiss fou"',
        "  fi",
        ...others.map((m) => `  modinfo ${m} >/dev/null 2>&1 || kmiss="$kmiss ${m}"`),
        "  ipmiss=",
        "  if ! command -v ip >/dev/null 2>&1; then",
        "    ipmiss=ip",
        "  else",
        "    case \"$(ip fou help 2>&1)\" in *'fou add'*) ;; *) ipmiss='ip fou' ;; esac",
        "  fi",
        "}",
    ].join("\n");
}

/** The drift check of the install step: fou (and the tunnels' modules, and `ip fou`) usable on the running kernel. */
export function fouUsableCheck(modules: readonly string[], paths: Pick<KernelPaths, "kernelRelease">): string {
    return [
        sh`read -r rel < ${paths.kernelRelease}`,
        fouMissing(modules),
        "fou_missing",
        'if [ -n "$kmiss" ]; then echo "Linux $rel lacks:$kmiss (booted into an old kernel?)"; exit 1; fi',
        'if [ -n "$ipmiss" ]; then echo "$ipmiss is missing"; exit 1; fi',
    ].join("\n");
}

/**
 * The install step. fou usable on the running kernel (with the tunnels' modules and `ip fou`):
 * nothing changes, `kernel=<rel>` `action=none`. Only `ip fou` missing: iproute2 (iproute) is
 * installed, `action=ip`, no reboot. Otherwise the distribution in os-release decides:
 *
 * - CentOS/RHEL 7: the guide's ELRepo `kernel-ml`, `grub2-set-default 0`, `grub2-mkconfig`;
 * - RHEL-family 8/9: ELRepo's el8/el9 `kernel-ml` through dnf, `grubby --set-default`;
 * - Debian: the package (bookworm: `linux-image-6.12-<arch>`, else `linux-image-<arch>`), from
 *   the archive or from `repository` signed by `key`, then `update-grub`;
 * - Ubuntu: `linux-generic-hwe-<VERSION_ID>` (or the package), then `update-grub`;
 * - anything else: an error naming ID and VERSION_ID, nothing installed.
 *
 * Then it records the old release, boot id and the new kernel in the state file, schedules the
 * reboot three seconds out (the command returns first) and stops the SSH listener, so that no
 * later dial lands on the old boot; the open session survives (KillMode=process).
 */
export function kernelInstallScripts(o: KernelInstallOptions): CommandScripts {
    const p = o.paths;
    const key = o.key?.trim();
    const gpgFile = `${p.keyrings}/${APT_NAME}.gpg`;
    const ascFile = `${p.keyrings}/${APT_NAME}.asc`;
    const listFile = `${p.sourcesList}/${APT_NAME}.list`;
    const repoLines = o.repository === undefined ? undefined : key === undefined
        ? { gpg: o.repository.trim(), asc: o.repository.trim() }
        : { gpg: withSignedBy(o.repository, gpgFile), asc: withSignedBy(o.repository, ascFile) };
    const create = [
        "set -eu",
        labelLine(o.label),
        sh`f=${p.state}; log=${p.log}`,
        sh`read -r rel < ${p.kernelRelease}`,
        "nl='\n'",
        fouMissing(o.modules),
        "fou_missing",
        'if [ -z "$kmiss" ] && [ -z "$ipmiss" ]; then echo "kernel=$rel"; echo "action=none"; exit 0; fi',
        // The distribution, as DISTRIBUTION_FIX reads it (hostPrep.ts).
        `osr() { sed -n "s/^$1=//p" ${shq(p.osRelease)} 2>/dev/null | head -n 1 | tr -d "\\"'"; }`,
        "os_id=$(osr ID); os_like=$(osr ID_LIKE); os_ver=$(osr VERSION_ID)",
        "family=",
        'case " $os_id $os_like " in',
        '  *" ubuntu "*) family=ubuntu ;;',
        '  *" debian "*) family=debian ;;',
        '  *" rhel "*|*" centos "*) case "$os_ver" in 7|7.*) family=el7 ;; 8|8.*) family=el8 ;; 9|9.*) family=el9 ;; esac ;;',
        "esac",
        'lacks=; [ -z "$kmiss" ] || lacks="Linux $rel lacks:$kmiss"; [ -z "$ipmiss" ] || lacks="${lacks:+$lacks; }$ipmiss is missing"',
        'if [ -z "$family" ]; then',
        `  echo "fou-tunnel: $fou_at: $lacks, and the kernel upgrade knows Debian, Ubuntu, CentOS/RHEL 7 and RHEL-family 8/9 only; ${p.osRelease} says ID=\${os_id:-none}, VERSION_ID=\${os_ver:-none}: nothing was installed; install a kernel with fou (CONFIG_NET_FOU) by hand, or remove kernel.upgrade from the topology" >&2`,
        "  exit 1",
        "fi",
        ...(o.repository === undefined
            ? []
            : [
                  'case $family in el*)',
                  '  echo "fou-tunnel: $fou_at: kernel.repository is an apt source line, and this host is ${os_id} ${os_ver} (yum/dnf): nothing was installed; remove repository (ELRepo is used)" >&2; exit 1 ;;',
                  "esac",
              ]),
        // Every package manager's output goes to the log; a failure shows its last lines.
        '[ -d "${f%/*}" ] || mkdir -p "${f%/*}"',
        ': > "$log"',
        'run() { echo "+ $*" >> "$log"; "$@" >> "$log" 2>&1 || { rc=$?; { echo "fou-tunnel: $fou_at: $* failed (exit $rc); the end of $log:"; tail -n 20 "$log"; } >&2; exit "$rc"; }; }',
        // An install that finds the package installed already (a re-run) is no failure.
        'ensure() { q=$1; shift; rpm -q "$q" >/dev/null 2>&1 || run "$@"; }',
        `kernels() { for k in ${shq(p.boot)}/vmlinuz-*; do [ -e "$k" ] || continue; k=\${k##*/vmlinuz-}; case $k in *rescue*) ;; *) echo "$k" ;; esac; done | sort -V; }`,
        'if [ -z "$kmiss" ]; then',
        // Only ip lacks fou: a newer iproute2, no reboot.
        "  case $family in",
        "    el7) run yum -y update iproute ;;",
        "    el*) run dnf install -y iproute ;;",
        "    *) export DEBIAN_FRONTEND=noninteractive; run apt-get update; run apt-get install -y iproute2 ;;",
        "  esac",
        '  fou_missing; if [ -n "$ipmiss" ]; then echo "fou-tunnel: $fou_at: iproute2 was upgraded, and $ipmiss is still missing: install an iproute2 of 3.18 or newer" >&2; exit 1; fi',
        '  echo "kernel=$rel"; echo "action=ip"; exit 0',
        "fi",
        "before=$(kernels)",
        "case $family in",
        "  el7)",
        sh`    run rpm --import ${ELREPO.key}`,
        sh`    ensure elrepo-release run yum install -y ${ELREPO.release(7)}`,
        sh`    pkg=${o.package ?? "kernel-ml"}`,
        '    run yum --enablerepo=elrepo-kernel install -y "$pkg" ;;',
        "  el8|el9)",
        "    major=${family#el}",
        sh`    run rpm --import ${ELREPO.key}`,
        sh`    run rpm --import ${ELREPO.keyV2}`,
        `    ensure elrepo-release run dnf install -y "https://www.elrepo.org/elrepo-release-$major.el$major.elrepo.noarch.rpm"`,
        sh`    pkg=${o.package ?? "kernel-ml"}`,
        '    run dnf --enablerepo=elrepo-kernel install -y "$pkg" ;;',
        "  *)",
        "    export DEBIAN_FRONTEND=noninteractive",
        ...(o.package !== undefined
            ? [sh`    pkg=${o.package}`]
            : [
                  "    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)",
                  "    case $family:$os_ver in",
                  `      debian:12|debian:12.*) pkg="${BOOKWORM_KERNEL}-$arch" ;;`,
                  '      debian:*) pkg="linux-image-$arch" ;;',
                  '      ubuntu:*) pkg="linux-generic-hwe-$os_ver" ;;',
                  "    esac",
              ]),
        ...(repoLines === undefined
            ? []
            : [
                  sh`    [ -d ${p.keyrings} ] || mkdir -p ${p.keyrings}`,
                  sh`    [ -d ${p.sourcesList} ] || mkdir -p ${p.sourcesList}`,
                  ...(key === undefined
                      ? [sh`    line=${repoLines.gpg}`]
                      : [
                            sh`    key=${key}`,
                            // Dearmored for apt when gpg is there; else the armored key, which apt reads as .asc.
                            "    if command -v gpg >/dev/null 2>&1; then",
                            sh`      printf '%s\\n' "$key" | gpg --dearmor > ${gpgFile + ".tmp"}; mv ${gpgFile + ".tmp"} ${gpgFile}; chmod 0644 ${gpgFile}; rm -f ${ascFile}`,
                            sh`      line=${repoLines.gpg}`,
                            "    else",
                            sh`      printf '%s\\n' "$key" > ${ascFile}; chmod 0644 ${ascFile}; rm -f ${gpgFile}`,
                            sh`      line=${repoLines.asc}`,
                            "    fi",
                        ]),
                  sh`    printf '%s\\n' "$line" > ${listFile}`,
              ]),
        "    run apt-get update",
        '    run apt-get install -y "$pkg" ;;',
        "esac",
        "after=$(kernels)",
        // The kernel the install added (the newest of those that were not there), else the newest.
        'new=; for k in $after; do case "$nl$before$nl" in *"$nl$k$nl"*) ;; *) new=$k ;; esac; done',
        'if [ -z "$new" ]; then new=$(printf \'%s\\n\' "$after" | tail -n 1); fi',
        'if [ -z "$new" ] || [ "$new" = "$rel" ]; then',
        `  echo "fou-tunnel: $fou_at: $lacks, and after installing $pkg the newest kernel in ${p.boot} is \${new:-none}, the running one: nothing to reboot into; choose a kernel package built with fou (kernel.package)" >&2; exit 1`,
        "fi",
        "case $family in",
        "  el7)",
        "    run grub2-set-default 0",
        sh`    run grub2-mkconfig -o ${p.grubCfg} ;;`,
        sh`  el*) run grubby --set-default ${p.boot + "/vmlinuz-"}"$new" ;;`,
        // The kernel package's own hook runs update-grub too; a host without GRUB has none.
        "  *) if command -v update-grub >/dev/null 2>&1; then run update-grub; fi ;;",
        "esac",
        'if [ -n "$ipmiss" ]; then',
        "  case $family in",
        "    el7) run yum -y update iproute ;;",
        "    el*) run dnf install -y iproute ;;",
        "    *) run apt-get install -y iproute2 ;;",
        "  esac",
        "fi",
        sh`boot=$(cat ${p.bootId})`,
        'printf \'pending=1\\nold=%s\\nbootId=%s\\nnew=%s\\n\' "$rel" "$boot" "$new" > "$f.tmp"; mv "$f.tmp" "$f"',
        // The reboot, three seconds out: this command returns (and its session closes) first.
        'if command -v systemd-run >/dev/null 2>&1 && systemd-run --on-active=3 --unit=fou-tunnel-reboot systemctl reboot >> "$log" 2>&1; then :',
        "else nohup sh -c 'sleep 3; reboot' >/dev/null 2>&1 &",
        "fi",
        // No later dial may land on the old boot. The units' KillMode=process keeps this session.
        "if command -v systemctl >/dev/null 2>&1; then",
        '  for u in ssh.socket ssh.service sshd.service; do if systemctl is-active --quiet "$u" 2>/dev/null; then systemctl stop "$u" >> "$log" 2>&1 || true; fi; done',
        "fi",
        'echo "kernel=$rel"; echo "action=reboot"; echo "to=$new"; echo "bootId=$boot"',
    ].join("\n");
    return {
        create,
        // Destroy leaves the kernel: it removes only the step's own files.
        delete: ["set -eu", sh`rm -f ${p.state} ${p.log}`, removeEmptyStateDirs(p.state)].join("\n"),
    };
}

/**
 * The verify step, after the reboot. A pending reboot in the state file: the boot id must have
 * changed, the running release must be the installed one, and fou (built on ip_tunnel) must
 * load; on the old kernel it fails with both releases and the default boot entry. It prints
 * `kernelBefore=`, `kernelAfter=`, `bootId=`. No reboot pending: the running kernel as both.
 */
export function kernelVerifyScript(paths: KernelPaths, label?: string): string {
    const p = paths;
    return [
        "set -eu",
        labelLine(label),
        sh`f=${p.state}`,
        sh`read -r rel < ${p.kernelRelease}`,
        sh`boot=$(cat ${p.bootId})`,
        "pending=; old=; new=; oldboot=",
        "if [ -f \"$f\" ]; then",
        "  while IFS='=' read -r k v; do",
        '    case $k in pending) pending=$v ;; old) old=$v ;; new) new=$v ;; bootId) oldboot=$v ;; esac',
        '  done < "$f"',
        "fi",
        "default_entry() {",
        "  e=",
        "  if command -v grub-editenv >/dev/null 2>&1; then e=$(grub-editenv list 2>/dev/null | sed -n 's/^saved_entry=//p'); fi",
        '  if [ -n "$e" ]; then echo "saved_entry=$e (grub-editenv list)"; return; fi',
        "  if command -v grubby >/dev/null 2>&1; then e=$(grubby --default-kernel 2>/dev/null || true); fi",
        '  if [ -n "$e" ]; then echo "$e (grubby --default-kernel)"; return; fi',
        sh`  e=$(grep ^GRUB_DEFAULT ${p.defaultGrub} 2>/dev/null || true)`,
        `  echo "\${e:-unknown} (${p.defaultGrub})"`,
        "}",
        'fail() { echo "fou-tunnel: $fou_at: $1" >&2; exit 1; }',
        'if [ "$pending" = 1 ]; then',
        '  [ "$boot" != "$oldboot" ] || fail "the host has not rebooted (boot id $boot, as before the install): the reboot the install scheduled did not happen; reboot it into $new"',
        '  [ "$rel" = "$new" ] || fail "the host rebooted into Linux $rel, not the installed $new (it ran $old before); the default boot entry: $(default_entry)"',
        '  deps=$(modinfo --field=depends fou 2>/dev/null) || fail "Linux $rel has no fou module"',
        '  fn=$(modinfo --field=filename fou 2>/dev/null || true)',
        '  case ",$deps," in *,ip_tunnel,*) ;; *) [ "$fn" = "(builtin)" ] || fail "the fou module of Linux $rel does not depend on ip_tunnel (depends: $deps)" ;; esac',
        // Loaded to prove it loads; unloaded again when this step loaded it (HostPrep loads and counts it).
        sh`  if [ -d ${p.sysModule + "/fou"} ]; then modprobe fou || fail "modprobe fou failed on Linux $rel"`,
        '  else modprobe fou || fail "modprobe fou failed on Linux $rel"; modprobe -r fou 2>/dev/null || true',
        "  fi",
        '  printf \'pending=0\\nold=%s\\nbootId=%s\\nnew=%s\\n\' "$old" "$oldboot" "$new" > "$f.tmp"; mv "$f.tmp" "$f"',
        '  before=$old',
        'elif [ "$pending" = 0 ] && [ "$rel" = "$new" ]; then',
        '  before=$old',
        "else",
        '  before=$rel',
        "fi",
        'echo "kernelBefore=$before"; echo "kernelAfter=$rel"; echo "bootId=$boot"',
    ].join("\n");
}
