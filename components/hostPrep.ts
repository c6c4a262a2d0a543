import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { CommandScripts, hostCommand, TunnelHost } from "./host";
import { expect, labelLine, removeEmptyStateDirs, STATE_ROOT, stateFile, undoOnFailure } from "./hostState";
import { contains, fileHolds, KERNEL_RELEASE, script, sh, shq } from "./shell";
import { throwIfInvalid } from "../lib/validate";
import { MODULES } from "../lib/vocabulary";

export interface HostPrepArgs {
    readonly host: TunnelHost;
    /** Modules to load after the kernel check; default `fou`, `ipip`. */
    readonly modules?: readonly string[];
    /** Turn on `net.ipv4.ip_forward` (persisted in /etc/sysctl.conf); default true. */
    readonly ipForward?: boolean;
}

/** The forwarding value the host had before any stack changed it; shared by all stacks. */
const FORWARD_ORIG = `${STATE_ROOT}/ip_forward.orig`;
/**
 * Modules a stack loaded that were still in use when its kernel step was deleted (another stack's
 * FOU port needs fou): host-wide, so the last kernel step to go, of whichever stack, unloads them
 * once nothing uses them, and the host ends as it was before any stack.
 */
const HANDED_OVER = `${STATE_ROOT}/handed-over.modules`;
/** Marks our line in /etc/sysctl.conf; plain text, so it is also its own sed pattern. */
const SYSCTL_MARK = "# fou-tunnel ip_forward";
const SYSCTL_LINE = "net.ipv4.ip_forward = 1";

/**
 * What still needs module `$1` on the host: a FOU port or an encapsulating link (fou), a tunnel
 * link of its kind other than the module's own fallback device (`tunl0`, `sit0`, `gre0`…), or
 * another stack that loaded it too. Unloading `ipip`, `sit`, `ip_gre` or `fou` deletes every link
 * of that kind and every FOU port, whoever made them, and such links hold no module reference
 * (measured on Debian's 6.1), so the refcount cannot tell.
 */
const MODULE_IN_USE = [
    "in_use() {",
    "  case $1 in",
    '    fou) [ -z "$(ip fou show 2>/dev/null)" ] || return 0',
    "         ip -d -o link show 2>/dev/null | grep -Eq ' encap (fou|gue) ' && return 0 ;;",
    "    ipip) kinds=ipip; own=tunl0 ;;",
    "    sit) kinds=sit; own=sit0 ;;",
    "    ip_gre) kinds='gre gretap erspan'; own='gre0 gretap0 erspan0' ;;",
    "  esac",
    '  if [ "$1" != fou ]; then',
    "    for k in $kinds; do",
    `      for l in $(ip -o link show type "$k" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do`,
    '        case " $own " in *" $l "*) ;; *) return 0 ;; esac',
    "      done",
    "    done",
    "  fi",
    `  for g in ${STATE_ROOT}/*/*.modules; do`,
    '    [ "$g" != "$f" ] && [ -f "$g" ] && grep -qx "$1" "$g" && return 0',
    "  done",
    "  return 1",
    "}",
    // Unloads, newest first, what this resource loaded and nothing needs; the rest stays listed.
    "unload_unused() {",
    '  rev=; while read -r m; do rev="$m $rev"; done < "$f"',
    '  keep=; for m in $rev; do',
    '    case " $* " in *" $m "*) keep="$m $keep"; continue ;; esac',
    '    if [ -d "/sys/module/$m" ] && in_use "$m"; then keep="$m $keep"; continue; fi',
    '    if [ -d "/sys/module/$m" ]; then modprobe -r "$m"; fi',
    "  done",
    '  for m in $keep; do printf "%s\\n" "$m"; done > "$f.tmp"; mv "$f.tmp" "$f"',
    "}",
].join("\n");

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
 * Checks the kernel can do FOU (≥ 3.18, `fou` module present and built on `ip_tunnel`, which is
 * there too) and `ip` knows `ip fou` and link encapsulation, and loads the modules: `uname -r;
 * modinfo fou; ip fou help; modprobe fou; modprobe ipip`. Fails with every problem found, each
 * naming the host, its kernel and the fix — for the distribution `/etc/os-release` names
 * ({@link DISTRIBUTION_FIX}). The modules it loaded are listed in `stateFile` on the
 * host; a run with a shorter list, and delete, unload those of them nothing uses any more
 * ({@link MODULE_IN_USE}). Create and update are the same script, so a changed module list
 * updates in place and never replaces (a replace would unload what live tunnels use). A create
 * that fails once it has loaded a module unloads what it loaded (unless something uses it) and
 * forgets it: Pulumi records nothing for a failed create. LABEL names the host in messages.
 */
export function kernelScripts(modules: readonly string[], stateFile: string, label?: string): CommandScripts {
    const list = modules.map((m) => sh`${m}`).join(" ");
    return {
        create: script(
            // uname -r, read by the shell (no process).
            `read -r rel < ${KERNEL_RELEASE}`,
            // The checks run once quietly; only a host that fails them pays for the messages (the
            // distribution's fix reads os-release with a few processes).
            'host=; kfix=; ipfix=; quiet=1',
            'say() { bad=1; if [ -z "$quiet" ]; then echo "fou-tunnel: $host$1" >&2; fi; }',
            "problems() {",
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
            "if ! command -v ip >/dev/null 2>&1; then",
            '  say " has no ip command: install iproute2${ipfix:+; $ipfix}"',
            // iproute2 before 3.18 has no `ip fou` ('Object "fou" is unknown') and no `encap` for links.
            `elif ! { ${contains('"$(ip fou help 2>&1)"', "fou add")}; } || ! { ${contains('"$(ip link help ipip 2>&1)"', "encap")}; }; then`,
            '  say ": its ip ($(ip -V 2>&1 | head -n 1)) has no ip fou or no link encapsulation: upgrade iproute2 to 3.18 or newer${ipfix:+; $ipfix}"',
            "fi",
            "return 0",
            "}",
            "bad=0; problems",
            'if [ "$bad" != 0 ]; then',
            "  host=$(hostname)",
            DISTRIBUTION_FIX,
            "  quiet=; problems; exit 1",
            "fi",
            sh`f=${stateFile}`,
            labelLine(label),
            MODULE_IN_USE,
            'fou_new=; fou_made=; [ -e "$f" ] || fou_made=1',
            ...undoOnFailure({
                undo: [
                    // Newest first: what this run loaded and nothing else needs.
                    'for m in $fou_new; do if [ -d "/sys/module/$m" ] && ! in_use "$m"; then modprobe -r "$m"; fi; done',
                    'if [ -f "$f" ]; then while read -r x; do case " $fou_new " in *" $x "*) ;; *) printf \'%s\\n\' "$x" ;; esac; done < "$f" > "$f.tmp"; mv "$f.tmp" "$f"; fi',
                    'if [ -n "$fou_made" ] && [ ! -s "$f" ]; then rm -f "$f"; fi',
                    removeEmptyStateDirs(stateFile),
                ],
            }),
            '[ -d "${f%/*}" ] || mkdir -p "${f%/*}"; [ -e "$f" ] || : > "$f"',
            'listed() { while read -r x; do [ "$x" != "$1" ] || return 0; done < "$f"; return 1; }',
            `for m in ${list}; do`,
            // A failing modprobe's words behind the host and step, as every step's reason is printed.
            '  if [ ! -d "/sys/module/$m" ]; then',
            '    fou_changing=1; fou_new="$m $fou_new"',
            '    if ! fou_err=$(modprobe "$m" 2>&1); then printf \'fou-tunnel: %s: %s\\n\' "$fou_at" "$fou_err" >&2; exit 1; fi',
            '    listed "$m" || echo "$m" >> "$f"',
            "  fi",
            "done",
            `unload_unused ${list}`,
            'echo "kernel=$rel"',
            `echo ${shq(`modules=${modules.join(" ")}`)}`,
        ),
        delete: script(
            sh`f=${stateFile}; h=${HANDED_OVER}`,
            MODULE_IN_USE,
            // What it loaded and something still uses (another stack's port, say) is handed over.
            'if [ -f "$f" ]; then unload_unused; cat "$f" >> "$h"; rm -f "$f"; fi',
            'if [ -f "$h" ]; then',
            // Module names are words ([a-z0-9_]): split on purpose.
            "  keep=",
            "  # shellcheck disable=SC2013",
            '  for m in $(sort -u "$h"); do',
            '    [ -d "/sys/module/$m" ] || continue',
            '    if in_use "$m" || ! modprobe -r "$m"; then keep="$keep $m"; fi',
            "  done",
            "  # shellcheck disable=SC2086",
            '  if [ -n "$keep" ]; then printf "%s\\n" $keep > "$h.tmp"; mv "$h.tmp" "$h"; else rm -f "$h"; fi',
            "fi",
            removeEmptyStateDirs(stateFile),
        ),
    };
}

/**
 * `net.ipv4.ip_forward = 1` the guide's way (a line in /etc/sysctl.conf, applied now). Each
 * resource that wants forwarding holds a claim file (`claimFile`); the value found before the
 * first claim is kept host-wide, and the last claim's delete restores it and removes the line,
 * so two stacks on one host never undo each other's forwarding. A create that fails before its
 * claim is recorded undoes what it did, as its delete would.
 */
export function ipForwardScripts(claimFile: string, label?: string): CommandScripts {
    const claims = `${STATE_ROOT}/*/*.ip_forward`;
    const release = [
        sh`rm -f ${claimFile}`,
        `if ! ls ${claims} >/dev/null 2>&1; then`,
        "  if [ -f /etc/sysctl.conf ]; then sed -i '/^# fou-tunnel ip_forward$/{N;d}' /etc/sysctl.conf; fi",
        sh`  if [ -f ${FORWARD_ORIG} ]; then sysctl -q -w "net.ipv4.ip_forward=$(cat ${FORWARD_ORIG})"; rm -f ${FORWARD_ORIG}; fi`,
        "fi",
        removeEmptyStateDirs(claimFile),
    ];
    return {
        create: script(
            labelLine(label),
            ...undoOnFailure({ undo: release }),
            sh`[ -e ${claimFile} ] || fou_changing=1`,
            sh`mkdir -p ${claimFile.slice(0, claimFile.lastIndexOf("/"))}`,
            sh`[ -f ${FORWARD_ORIG} ] || cat /proc/sys/net/ipv4/ip_forward > ${FORWARD_ORIG}`,
            sh`touch ${claimFile}`,
            "touch /etc/sysctl.conf",
            sh`grep -qxF ${SYSCTL_MARK} /etc/sysctl.conf || printf '%s\n%s\n' ${SYSCTL_MARK} ${SYSCTL_LINE} >> /etc/sysctl.conf`,
            "sysctl -q -w net.ipv4.ip_forward=1",
            sh`echo "previous=$(cat ${FORWARD_ORIG})"`,
        ),
        delete: script(...release),
    };
}

/** The drift check of the kernel step: every module is loaded. */
export function modulesLoaded(modules: readonly string[]): string {
    return modules.map((m) => expect(sh`[ -d /sys/module/${m} ]`, `module ${m} is not loaded`)).join("\n");
}

/** The drift check of forwarding: on now, and our line in /etc/sysctl.conf for the next boot. */
export function ipForwardOn(): string {
    return [
        expect(fileHolds("/proc/sys/net/ipv4/ip_forward", 1), "net.ipv4.ip_forward is not 1"),
        expect(sh`grep -qxF ${SYSCTL_LINE} /etc/sysctl.conf`, `/etc/sysctl.conf lacks "${SYSCTL_LINE}"`),
    ].join("\n");
}

/**
 * Prepares a host for FOU tunnels: kernel check and modules, then IP forwarding.
 * Every tunnel command on the host depends on it, so destroy undoes it last.
 */
export class HostPrep extends pulumi.ComponentResource {
    /** `kernel=<release>` and `modules=<the modules it keeps loaded>`. */
    public readonly kernelReport: pulumi.Output<string>;
    /** The resource later steps depend on: the kernel check and modules. */
    public readonly ready: pulumi.Resource;
    /** `net.ipv4.ip_forward = 1`, when asked for; nothing waits for it. */
    public readonly ipForward?: command.remote.Command;

    constructor(name: string, args: HostPrepArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const modules = args.modules ?? MODULES.ipip;
        throwIfInvalid([
            modules.length === 0 ? `HostPrep ${name}: modules must not be empty` : undefined,
            ...modules.map((m) =>
                /^[a-z0-9_]{1,55}$/.test(m) ? undefined : `HostPrep ${name}: module name ${JSON.stringify(m)} is not valid`,
            ),
        ]);
        super("fou:index:HostPrep", name, {}, opts);

        const kernel: command.remote.Command = hostCommand(
            `${name}-kernel`,
            // The module list is no trigger: a new list updates in place (create runs again).
            {
                host: args.host,
                scripts: kernelScripts(modules, stateFile(`${name}-kernel`, "modules"), `${args.host.name}: kernel modules`),
                triggers: [],
                probe: { check: modulesLoaded(modules), object: `kernel modules ${modules.join(", ")}` },
            },
            { parent: this },
        );
        if (args.ipForward ?? true) {
            this.ipForward = hostCommand(
                `${name}-ip-forward`,
                {
                    host: args.host,
                    scripts: ipForwardScripts(stateFile(`${name}-ip-forward`, "ip_forward"), `${args.host.name}: net.ipv4.ip_forward`),
                    triggers: ["net.ipv4.ip_forward=1"],
                    probe: { check: ipForwardOn(), object: "net.ipv4.ip_forward" },
                },
                // Independent of the modules and of the tunnel objects: it runs beside them.
                { parent: this },
            );
        }
        this.kernelReport = kernel.stdout;
        this.ready = kernel;
        this.registerOutputs({ kernelReport: this.kernelReport });
    }
}
