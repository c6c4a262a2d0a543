import type { CommandScripts } from "./host";
import { hostLibrary } from "./hostLibrary";
import { HOST_PATHS, HostPaths } from "./hostPaths";
import { expect, labelLine, stateRootOf } from "./hostState";
import { sh } from "./shell";

/**
 * Checks the kernel can do FOU (≥ 3.18, the modules present, fou built
 * on ip_tunnel, `ip fou`) and loads the modules: `uname -r; modinfo fou; ip fou help; modprobe
 * fou; modprobe ipip`. The modules it loaded are listed in `stateFile` on the host; a run with a
 * shorter list, and delete, unload those of them nothing uses any more (`fou_in_use`).
 * Create and update are the same script, so a changed module list updates in place and never
 * replaces (a replace would unload what live tunnels use). A create that fails once it has
 * loaded a module unloads what it loaded (unless something uses it) and forgets it: Pulumi
 * records nothing for a failed create. LABEL names the host in messages; PATHS are where the
 * step looks (the state lives beside STATEFILE).
 */
export function kernelScripts(modules: readonly string[], stateFile: string, label?: string, paths: HostPaths = HOST_PATHS): CommandScripts {
    const root = stateRootOf(stateFile);
    // Modules a stack loaded that were still in use when its kernel step was deleted (another
    // stack's FOU port needs fou) are handed over host-wide: the last kernel step to go, of
    // whichever stack, unloads them once nothing uses them.
    const vars = [
        sh`fou_modules=${modules.join(" ")}; f=${stateFile}; fou_state_root=${root}; fou_handed_over=${`${root}/handed-over.modules`}`,
        sh`fou_kernel_release=${paths.kernelRelease}; fou_os_release=${paths.osRelease}; fou_lib_modules=${paths.libModules}; fou_sys_module=${paths.sysModule}`,
    ];
    return {
        library: `${hostLibrary("undo.sh")}\n${hostLibrary("kernel-prep.sh")}`,
        create: ["set -eu", ...vars, labelLine(label), "fou_kernel_create"].join("\n"),
        delete: ["set -eu", ...vars, "fou_kernel_delete"].join("\n"),
    };
}

/** The drift check of the kernel step: every module is loaded. */
export function modulesLoaded(modules: readonly string[]): string {
    return modules.map((m) => expect(sh`[ -d /sys/module/${m} ]`, `module ${m} is not loaded`)).join("\n");
}
