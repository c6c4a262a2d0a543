import type { CommandScripts } from "./host";
import { hostLibrary } from "./hostLibrary";
import { labelLine } from "./hostState";
import type { KernelPaths } from "./kernelUpgradePaths";
import { sh } from "./shell";

/**
 * The verify step, after the reboot: `fou_verify_create` of components/sh/kernel-verify.sh, with
 * the host's paths as quoted variables. A pending reboot in the state file: the boot id must have
 * changed, the running release must be the installed one, and fou (built on ip_tunnel) must
 * load; on the old kernel it fails with both releases and the default boot entry. It prints
 * `kernelBefore=`, `kernelAfter=`, `bootId=`. No reboot pending: the running kernel as both.
 * It has no delete.
 */
export function kernelVerifyScripts(paths: KernelPaths, label?: string): CommandScripts {
    const p = paths;
    return {
        library: hostLibrary("kernel-verify.sh"),
        create: [
            "set -eu",
            labelLine(label),
            sh`f=${p.state}; fou_kernel_release=${p.kernelRelease}; fou_boot_id=${p.bootId}; fou_sys_module=${p.sysModule}; fou_default_grub=${p.defaultGrub}`,
            "fou_verify_create",
        ].join("\n"),
    };
}
