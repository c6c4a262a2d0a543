import { contains, KERNEL_RELEASE } from "./shell";

/** Where the distribution is read from (a constant, so tests can point the script at a fake). */
export const OS_RELEASE = "/etc/os-release";

/**
 * Sets `kfix` and `ipfix`: how to get a kernel with fou, and an iproute2 with `ip fou`, on the
 * distribution `/etc/os-release` names (empty where it is not one of these). CentOS/RHEL 7 ship
 * Linux 3.10 without fou: ELRepo's mainline kernel (kernel-ml) is the guide's fix, and iproute
 * from 7.5 on (4.11) has `ip fou`. Debian and Ubuntu: their current kernel packages have fou.
 */
const DISTRIBUTION_FIX = [
    `osr() { sed -n "s/^$1=//p" ${OS_RELEASE} 2>/dev/null | head -n 1 | tr -d "\\"'"; }`,
    'os_id=$(osr ID); os_like=$(osr ID_LIKE); os_ver=$(osr VERSION_ID); os_name=$(osr PRETTY_NAME); os_name=${os_name:-$os_id}',
    'kfix=; ipfix=',
    'case " $os_id $os_like " in',
    '  *" ubuntu "*)',
    '    kfix="on $os_name: apt-get update && apt-get install linux-generic (cloud kernels keep fou in linux-modules-extra-$rel), then reboot into it"',
    '    ipfix="on $os_name: apt-get install iproute2" ;;',
    '  *" debian "*)',
    '    kfix="on $os_name: apt-get update && apt-get install linux-image-$(dpkg --print-architecture 2>/dev/null || echo amd64) (Debian\'s current kernel, which has fou), then reboot into it"',
    '    ipfix="on $os_name: apt-get install iproute2" ;;',
    '  *" rhel "*|*" centos "*|*" fedora "*)',
    '    case "$os_ver" in',
    '      7|7.*)',
    '        kfix="on $os_name (Linux 3.10 has no fou): install ELRepo\'s mainline kernel: rpm --import https://www.elrepo.org/RPM-GPG-KEY-elrepo.org; yum install https://www.elrepo.org/elrepo-release-7.el7.elrepo.noarch.rpm; yum --enablerepo=elrepo-kernel install kernel-ml; grub2-set-default 0; then reboot"',
    '        ipfix="on $os_name: yum update iproute (7.5 and later ship iproute 4.11, which has ip fou), or build iproute2 4.x from kernel.org and install it" ;;',
    '      *)',
    '        kfix="on $os_name: dnf install kernel-modules-extra (and the newest kernel), then reboot"',
    '        ipfix="on $os_name: dnf install iproute" ;;',
    '    esac ;;',
    'esac',
].join("\n");

/**
 * The kernel step's checks, before it changes anything: the kernel can do FOU (≥ 3.18, each of
 * LIST's modules present, `fou` built on `ip_tunnel`, which is there too) and `ip` knows `ip
 * fou` and link encapsulation (`uname -r; modinfo fou; ip fou help`). They run once quietly;
 * only a host that fails them pays for the messages: every problem, each naming the host, its
 * kernel and the fix for its distribution ({@link DISTRIBUTION_FIX}), then exit 1. LIST is the
 * modules, each quoted, joined by spaces.
 */
export function kernelCheckLines(list: string): string[] {
    return [
        // uname -r, read by the shell (no process).
        `read -r rel < ${KERNEL_RELEASE}`,
        // The distribution's fix reads os-release with a few processes: only on a failure.
        'host=; kfix=; ipfix=; quiet=1',
        'say() { bad=1; if [ -z "$quiet" ]; then echo "fou-tunnel: $host$1" >&2; fi; }',
        "problems() {",
        ...kernelProblems(list),
        ...ipProblems(),
        "return 0",
        "}",
        "bad=0; problems",
        'if [ "$bad" != 0 ]; then',
        "  host=$(hostname)",
        DISTRIBUTION_FIX,
        "  quiet=; problems; exit 1",
        "fi",
    ];
}

/** The kernel's part of `problems`: its release, kmod, each module, fou's ip_tunnel. */
function kernelProblems(list: string): string[] {
    return [
        'major=${rel%%.*}; rest=${rel#*.}; minor=${rest%%[!0-9]*}',
        'if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 18 ]; }; then',
        '  say " runs Linux $rel, which has no FOU support (needs 3.18 or newer): upgrade the kernel and reboot${kfix:+; $kfix}"',
        "elif ! command -v modprobe >/dev/null 2>&1 || ! command -v modinfo >/dev/null 2>&1; then",
        '  say " has no modprobe or modinfo: install kmod"',
        "else",
        // fou's modinfo once, for whether it is there and for its fields (filename, depends).
        "  nl='\n'",
        '  if info=$(modinfo fou 2>/dev/null); then info="$nl$info$nl"; else info=; fi',
        // One field of that output: the rest of the line after `<field>:`, without the padding.
        '  field() { v=${info#*"$nl$1:"}; if [ "$v" = "$info" ]; then v=; else v=${v%%"$nl"*}; v=${v#"${v%%[! \t]*}"}; fi; }',
        `  for m in ${list}; do`,
        '    if [ "$m" = fou ]; then [ -z "$info" ] || continue; elif modinfo "$m" >/dev/null 2>&1; then continue; fi',
        '    if [ ! -d "/lib/modules/$rel" ]; then',
        '      say " runs Linux $rel, whose modules are not installed (no /lib/modules/$rel: upgraded without a reboot?): reboot into the installed kernel${kfix:+, or $kfix}"; break',
        "    fi",
        '    say " runs Linux $rel without the $m module: install a kernel built with it (fou needs CONFIG_NET_FOU) and reboot${kfix:+; $kfix}"',
        "  done",
        '  field filename',
        '  if [ -n "$v" ] && [ "$v" != "(builtin)" ]; then',
        '    field depends',
        '    case ",$v," in',
        "      *,ip_tunnel,*)",
        '        if ! modinfo ip_tunnel >/dev/null 2>&1; then',
        '          say ": Linux $rel lacks the ip_tunnel module that fou is built on: its modules are incomplete; reinstall the kernel package${kfix:+; $kfix}"',
        "        fi ;;",
        "      *)",
        '        say ": the fou module of Linux $rel does not depend on ip_tunnel; this kernel cannot encapsulate tunnels in FOU${kfix:+; $kfix}" ;;',
        "    esac",
        "  fi",
        "fi",
    ];
}

/** iproute2's part of `problems`: `ip` there, with `ip fou` and link encapsulation. */
function ipProblems(): string[] {
    return [
        "if ! command -v ip >/dev/null 2>&1; then",
        '  say " has no ip command: install iproute2${ipfix:+; $ipfix}"',
        // iproute2 before 3.18 has no `ip fou` ('Object "fou" is unknown') and no `encap` for links.
        `elif ! { ${contains('"$(ip fou help 2>&1)"', "fou add")}; } || ! { ${contains('"$(ip link help ipip 2>&1)"', "encap")}; }; then`,
        '  say ": its ip ($(ip -V 2>&1 | head -n 1)) has no ip fou or no link encapsulation: upgrade iproute2 to 3.18 or newer${ipfix:+; $ipfix}"',
        "fi",
    ];
}
