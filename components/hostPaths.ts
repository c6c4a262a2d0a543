import { KERNEL_RELEASE } from "./shell";
import { STATE_ROOT } from "./hostState";

/**
 * Where host scripts look and keep things. Steps take them as parameters (the host's own by
 * default), so a test runs the same script against a fake host's root instead of editing its
 * text.
 */
export interface HostPaths {
    /** The running kernel's release (`uname -r`). */
    readonly kernelRelease: string;
    /** The distribution (`ID`, `ID_LIKE`, `VERSION_ID`), for the fix a failed check names. */
    readonly osRelease: string;
    /** The installed kernels' modules: `<dir>/<release>/modules.builtin`. */
    readonly libModules: string;
    /** Loaded modules: `<dir>/fou`. */
    readonly sysModule: string;
    /** What the stacks keep on the host (`/var/lib/fou-tunnel`). */
    readonly stateRoot: string;
}

export const HOST_PATHS: HostPaths = {
    kernelRelease: KERNEL_RELEASE,
    osRelease: "/etc/os-release",
    libModules: "/lib/modules",
    sysModule: "/sys/module",
    stateRoot: STATE_ROOT,
};

/** Every path of {@link HOST_PATHS} under ROOT (a test's fake host), with OVERRIDES. */
export function pathsUnder(root: string, overrides: Partial<HostPaths> = {}): HostPaths {
    const under = (p: string) => `${root}${p}`;
    return {
        kernelRelease: under(HOST_PATHS.kernelRelease),
        osRelease: under(HOST_PATHS.osRelease),
        libModules: under(HOST_PATHS.libModules),
        sysModule: under(HOST_PATHS.sysModule),
        stateRoot: under(HOST_PATHS.stateRoot),
        ...overrides,
    };
}
