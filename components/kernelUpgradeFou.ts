import { hostFunctions, hostLibrary } from "./hostLibrary";
import type { KernelPaths } from "./kernelUpgradePaths";
import { sh } from "./shell";

/**
 * The tunnels' modules as `fou_modules` of components/sh/kernel-fou.sh: words the shell splits,
 * so a name other than a-z, 0-9 and _ is an error here.
 */
export function moduleWords(modules: readonly string[]): string {
    const bad = modules.find((m) => m !== "fou" && !/^[a-z0-9_]{1,55}$/.test(m));
    if (bad !== undefined) throw new Error(`kernel upgrade: module name ${JSON.stringify(bad)} is not valid`);
    return modules.join(" ");
}

/**
 * `fou_missing` of components/sh/kernel-fou.sh, which the install step carries: it sets `kmiss`
 * (what the running kernel lacks: fou, fou built on ip_tunnel, ip_tunnel, a tunnel module) and
 * `ipmiss` (`ip`, or `ip fou`).
 */
export function fouMissingLibrary(): string {
    return hostFunctions("kernel-fou.sh", ["fou_missing"]);
}

/** The drift check of the install step: fou (and the tunnels' modules, and `ip fou`) usable on the running kernel. */
export function fouUsableCheck(modules: readonly string[], paths: Pick<KernelPaths, "kernelRelease">): string {
    return [sh`fou_modules=${moduleWords(modules)}; fou_kernel_release=${paths.kernelRelease}`, hostLibrary("kernel-fou.sh"), "fou_usable_check"].join("\n");
}
