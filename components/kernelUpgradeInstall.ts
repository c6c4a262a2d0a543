import type { CommandScripts } from "./host";
import { hostLibrary } from "./hostLibrary";
import { labelLine, removeEmptyStateDirs } from "./hostState";
import { aptVariables } from "./kernelUpgradeApt";
import { fouMissingLibrary, moduleWords } from "./kernelUpgradeFou";
import type { KernelPaths } from "./kernelUpgradePaths";
import { sh } from "./shell";

/**
 * ELRepo, as the guide uses it on CentOS 7 (and its el8/el9 builds on RHEL-family 8 and 9): the
 * addresses components/sh/kernel-upgrade.sh installs from.
 */
export const ELREPO = {
    key: "https://www.elrepo.org/RPM-GPG-KEY-elrepo.org",
    keyV2: "https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org",
    release: (major: number) => `https://www.elrepo.org/elrepo-release-${major}.el${major}.elrepo.noarch.rpm`,
} as const;

/**
 * The default kernel package on Debian 12 (bookworm), as components/sh/kernel-upgrade.sh picks
 * it: its 6.12 kernel, which has fou.
 */
export const BOOKWORM_KERNEL = "linux-image-6.12";

/** What the kernel install asks of the package managers. */
export interface KernelPackageOptions {
    /** The kernel package; default per distribution. */
    readonly package?: string;
    /** An apt source line (`deb [options] URL suite components`). */
    readonly repository?: string;
    /** The repository's ASCII-armored public key. */
    readonly key?: string;
}

/** What the install step is asked to do on one host. */
export interface KernelInstallOptions extends KernelPackageOptions {
    /** Modules the host's tunnels need besides fou (`ipip`, `sit`, `ip_gre`). */
    readonly modules: readonly string[];
    readonly paths: KernelPaths;
    /** Names the host and step in messages: `k1: kernel upgrade`. */
    readonly label?: string;
}

/**
 * The install step: `fou_upgrade_create` of components/sh/kernel-upgrade.sh, with the options
 * and the host's paths as quoted variables. fou usable on the running kernel (with the tunnels'
 * modules and `ip fou`): nothing changes, `kernel=<rel>` `action=none`. Only `ip fou` missing:
 * iproute2 (iproute) is installed, `action=ip`, no reboot. Otherwise the distribution in
 * os-release decides:
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
    const vars = [
        sh`f=${p.state}; fou_log=${p.log}; fou_modules=${moduleWords(o.modules)}; fou_package=${o.package ?? ""}`,
        ...aptVariables(o.repository, o.key, p),
        sh`fou_kernel_release=${p.kernelRelease}; fou_boot_id=${p.bootId}; fou_os_release=${p.osRelease}; fou_boot=${p.boot}; fou_grub_cfg=${p.grubCfg}`,
    ];
    return {
        library: `${fouMissingLibrary()}\n${hostLibrary("kernel-upgrade.sh")}`,
        create: ["set -eu", labelLine(o.label), ...vars, "fou_upgrade_create"].join("\n"),
        // Destroy leaves the kernel: it removes only the step's own files.
        delete: ["set -eu", sh`rm -f ${p.state} ${p.log}`, removeEmptyStateDirs(p.state)].join("\n"),
    };
}
