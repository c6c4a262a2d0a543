import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { CommandScripts, hostCommand, TunnelHost } from "./host";
import { script, sh } from "./shell";
import { throwIfInvalid } from "../lib/validate";

/** Kernel modules a FOU tunnel of each inner protocol needs, in load order. */
export const MODULES_FOR_IPPROTO: Record<number, string[]> = {
    4: ["fou", "ipip"],
    41: ["fou", "sit"],
    47: ["fou", "ip_gre"],
};

export interface HostPrepArgs {
    readonly host: TunnelHost;
    /** Modules to load after the kernel check; default `fou`, `ipip`. */
    readonly modules?: string[];
    /** Turn on `net.ipv4.ip_forward` (persisted in /etc/sysctl.conf); default true. */
    readonly ipForward?: boolean;
}

/** Where the host keeps the forwarding value it had before fou-tunnel changed it. */
const STATE_DIR = "/var/lib/fou-tunnel";
const FORWARD_ORIG = `${STATE_DIR}/ip_forward.orig`;
/** Marks our line in /etc/sysctl.conf; plain text, so it is also its own sed pattern. */
const SYSCTL_MARK = "# fou-tunnel ip_forward";
const SYSCTL_LINE = "net.ipv4.ip_forward = 1";

/**
 * Checks the kernel can do FOU (≥ 3.18, `fou` module present and built on `ip_tunnel`) and loads
 * the modules: `uname -r; modinfo fou; modprobe fou; modprobe ipip`. Fails with a message that
 * names the host, its kernel and the fix. Delete unloads the modules it loaded, when unused.
 */
export function kernelScripts(modules: string[]): CommandScripts {
    const list = modules.map((m) => sh`${m}`).join(" ");
    return {
        create: script(
            'host=$(hostname); rel=$(uname -r)',
            'major=${rel%%.*}; rest=${rel#*.}; minor=${rest%%[!0-9]*}',
            'if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 18 ]; }; then',
            '  echo "fou-tunnel: $host runs Linux $rel, which has no FOU support (needs 3.18 or newer): upgrade the kernel and reboot" >&2; exit 1',
            "fi",
            `for m in ${list}; do`,
            '  if ! modinfo "$m" >/dev/null 2>&1; then',
            '    echo "fou-tunnel: $host runs Linux $rel without the $m module: install a kernel built with it (fou needs CONFIG_NET_FOU) and reboot" >&2; exit 1',
            "  fi",
            "done",
            'if [ "$(modinfo --field=filename fou)" != "(builtin)" ]; then',
            '  case ",$(modinfo --field=depends fou)," in *,ip_tunnel,*) ;; *)',
            '    echo "fou-tunnel: $host: the fou module of Linux $rel does not depend on ip_tunnel; this kernel cannot encapsulate tunnels in FOU" >&2; exit 1;;',
            "  esac",
            "fi",
            "loaded=",
            `for m in ${list}; do`,
            '  if [ ! -d "/sys/module/$m" ]; then modprobe "$m"; loaded="$loaded $m"; fi',
            "done",
            'echo "kernel=$rel"',
            'echo "loaded=${loaded# }"',
        ),
        delete: script(
            // Unload, newest first, what create loaded and nothing now uses.
            'loaded=$(printf "%s\\n" "${PULUMI_COMMAND_STDOUT:-}" | sed -n "s/^loaded=//p")',
            "order=",
            'for m in $loaded; do order="$m $order"; done',
            "for m in $order; do",
            '  if [ -d "/sys/module/$m" ] && [ "$(cat "/sys/module/$m/refcnt" 2>/dev/null || echo 1)" = 0 ]; then modprobe -r "$m"; fi',
            "done",
        ),
    };
}

/**
 * `net.ipv4.ip_forward = 1` the guide's way (a line in /etc/sysctl.conf, applied now). The value
 * found before the first change is kept on the host, so a re-run after a crash does not lose it,
 * and delete restores it and removes the line.
 */
export function ipForwardScripts(): CommandScripts {
    return {
        create: script(
            sh`mkdir -p ${STATE_DIR}`,
            sh`[ -f ${FORWARD_ORIG} ] || cat /proc/sys/net/ipv4/ip_forward > ${FORWARD_ORIG}`,
            "touch /etc/sysctl.conf",
            sh`grep -qxF ${SYSCTL_MARK} /etc/sysctl.conf || printf '%s\\n%s\\n' ${SYSCTL_MARK} ${SYSCTL_LINE} >> /etc/sysctl.conf`,
            "sysctl -q -w net.ipv4.ip_forward=1",
            sh`echo "previous=$(cat ${FORWARD_ORIG})"`,
        ),
        delete: script(
            "if [ -f /etc/sysctl.conf ]; then sed -i '/^# fou-tunnel ip_forward$/{N;d}' /etc/sysctl.conf; fi",
            sh`if [ -f ${FORWARD_ORIG} ]; then sysctl -q -w "net.ipv4.ip_forward=$(cat ${FORWARD_ORIG})"; rm -f ${FORWARD_ORIG}; fi`,
            sh`rmdir ${STATE_DIR} 2>/dev/null || true`,
        ),
    };
}

/**
 * Prepares a host for FOU tunnels: kernel check and modules, then IP forwarding.
 * Every tunnel command on the host depends on it, so destroy undoes it last.
 */
export class HostPrep extends pulumi.ComponentResource {
    /** `kernel=<release>` and `loaded=<modules loaded by us>`. */
    public readonly kernelReport: pulumi.Output<string>;
    /** The resource later steps depend on. */
    public readonly ready: pulumi.Resource;

    constructor(name: string, args: HostPrepArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const modules = args.modules ?? MODULES_FOR_IPPROTO[4];
        throwIfInvalid([
            modules.length === 0 ? `HostPrep ${name}: modules must not be empty` : undefined,
            ...modules.map((m) =>
                /^[a-z0-9_]{1,55}$/.test(m) ? undefined : `HostPrep ${name}: module name ${JSON.stringify(m)} is not valid`,
            ),
        ]);
        super("fou:index:HostPrep", name, {}, opts);

        const kernel: command.remote.Command = hostCommand(
            `${name}-kernel`,
            { host: args.host, scripts: kernelScripts(modules), triggers: [modules.join(",")] },
            { parent: this },
        );
        let ready: pulumi.Resource = kernel;
        if (args.ipForward ?? true) {
            ready = hostCommand(
                `${name}-ip-forward`,
                { host: args.host, scripts: ipForwardScripts(), triggers: ["net.ipv4.ip_forward=1"] },
                { parent: this, dependsOn: [kernel] },
            );
        }
        this.kernelReport = kernel.stdout;
        this.ready = ready;
        this.registerOutputs({ kernelReport: this.kernelReport });
    }
}
