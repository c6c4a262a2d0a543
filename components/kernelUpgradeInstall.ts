import type { CommandScripts } from "./host";
import { labelLine, removeEmptyStateDirs } from "./hostState";
import { fouMissing } from "./kernelUpgradeFou";
import { bootloaderLines, familyLines, iprouteLines, KernelPackageOptions, kernelPackageLines } from "./kernelUpgradeDistro";
import type { KernelPaths } from "./kernelUpgradePaths";
import { sh, shq } from "./shell";

/** What the install step is asked to do on one host. */
export interface KernelInstallOptions extends KernelPackageOptions {
    /** Modules the host's tunnels need besides fou (`ipip`, `sit`, `ip_gre`). */
    readonly modules: readonly string[];
    readonly paths: KernelPaths;
    /** Names the host and step in messages: `k1: kernel upgrade`. */
    readonly label?: string;
}

/**
 * The install step. fou usable on the running kernel (with the tunnels' modules and `ip fou`):
 * nothing changes, `kernel=<rel>` `action=none`. Only `ip fou` missing: iproute2 (iproute) is
 * installed, `action=ip`, no reboot. Otherwise the distribution in os-release decides
 * (kernelUpgradeDistro.ts):
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
    const create = [
        ...checkLines(o),
        ...familyLines(p, o.repository !== undefined),
        ...runHelperLines(p),
        ...iprouteOnlyLines(),
        "before=$(kernels)",
        ...kernelPackageLines(o, p),
        "after=$(kernels)",
        ...newKernelLines(p),
        ...bootloaderLines(p),
        'if [ -n "$ipmiss" ]; then',
        ...iprouteLines("  ", false),
        "fi",
        ...rebootLines(p),
    ].join("\n");
    return {
        create,
        // Destroy leaves the kernel: it removes only the step's own files.
        delete: ["set -eu", sh`rm -f ${p.state} ${p.log}`, removeEmptyStateDirs(p.state)].join("\n"),
    };
}

/** The start: what the running kernel and `ip` lack; with nothing lacking, `action=none` and done. */
function checkLines(o: KernelInstallOptions): string[] {
    const p = o.paths;
    return [
        "set -eu",
        labelLine(o.label),
        sh`f=${p.state}; log=${p.log}`,
        sh`read -r rel < ${p.kernelRelease}`,
        "nl='\n'",
        fouMissing(o.modules),
        "fou_missing",
        'if [ -z "$kmiss" ] && [ -z "$ipmiss" ]; then echo "kernel=$rel"; echo "action=none"; exit 0; fi',
    ];
}

/**
 * `run` (a package manager, its output in the log, a failure shown by the log's end), `ensure`
 * (an install unless the package is there) and `kernels` (the releases in the boot directory).
 */
function runHelperLines(p: KernelPaths): string[] {
    return [
        // Every package manager's output goes to the log; a failure shows its last lines.
        '[ -d "${f%/*}" ] || mkdir -p "${f%/*}"',
        ': > "$log"',
        'run() { echo "+ $*" >> "$log"; "$@" >> "$log" 2>&1 || { rc=$?; { echo "fou-tunnel: $fou_at: $* failed (exit $rc); the end of $log:"; tail -n 20 "$log"; } >&2; exit "$rc"; }; }',
        // An install that finds the package installed already (a re-run) is no failure.
        'ensure() { q=$1; shift; rpm -q "$q" >/dev/null 2>&1 || run "$@"; }',
        `kernels() { for k in ${shq(p.boot)}/vmlinuz-*; do [ -e "$k" ] || continue; k=\${k##*/vmlinuz-}; case $k in *rescue*) ;; *) echo "$k" ;; esac; done | sort -V; }`,
    ];
}

/** The kernel has fou and only `ip fou` is missing: a newer iproute2, `action=ip`, no reboot. */
function iprouteOnlyLines(): string[] {
    return [
        'if [ -z "$kmiss" ]; then',
        ...iprouteLines("  ", true),
        '  fou_missing; if [ -n "$ipmiss" ]; then echo "fou-tunnel: $fou_at: iproute2 was upgraded, and $ipmiss is still missing: install an iproute2 of 3.18 or newer" >&2; exit 1; fi',
        '  echo "kernel=$rel"; echo "action=ip"; exit 0',
        "fi",
    ];
}

/** Sets `new`: the kernel the install added (the newest of those that were not there), else the newest; the running one is an error. */
function newKernelLines(p: KernelPaths): string[] {
    return [
        'new=; for k in $after; do case "$nl$before$nl" in *"$nl$k$nl"*) ;; *) new=$k ;; esac; done',
        'if [ -z "$new" ]; then new=$(printf \'%s\\n\' "$after" | tail -n 1); fi',
        'if [ -z "$new" ] || [ "$new" = "$rel" ]; then',
        `  echo "fou-tunnel: $fou_at: $lacks, and after installing $pkg the newest kernel in ${p.boot} is \${new:-none}, the running one: nothing to reboot into; choose a kernel package built with fou (kernel.package)" >&2; exit 1`,
        "fi",
    ];
}

/** Records the pending reboot in the state file, schedules the reboot and stops the SSH listener. */
function rebootLines(p: KernelPaths): string[] {
    return [
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
    ];
}
