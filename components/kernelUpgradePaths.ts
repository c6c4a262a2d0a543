import { KERNEL_RELEASE } from "./shell";

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
