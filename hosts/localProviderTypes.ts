/**
 * The inputs and outputs of the local stack's dynamic providers (hosts/localProvider.ts): the
 * bridge, and one qemu VM as vm/vm.sh starts and reports it.
 */

/** The bridge this machine's VMs share, and the directory their state dirs live in. */
export interface NetworkInputs {
    /** The repository (vm/net.sh, vm/vm.sh), as of the last `up`. */
    readonly repo: string;
    readonly bridge: string;
    /** This machine's address on the bridge, `198.51.100.1/24`. */
    readonly address: string;
    /** `/run/fou-tunnel/<tag>`: every VM's state dir is under it. */
    readonly runDir: string;
}

/** One qemu VM as vm/vm.sh starts it. */
export interface VmInputs {
    /** The repository (vm/vm.sh), as of the last `up`. */
    readonly repo: string;
    readonly name: string;
    /** `198.51.100.151/24`. */
    readonly address: string;
    readonly bridge: string;
    readonly tap: string;
    readonly mac: string;
    readonly stateDir: string;
    readonly memoryMb: number;
    /** false: boot with fou/fou6 unusable (`--no-fou`). */
    readonly fou: boolean;
    /** root's authorized key, `ssh-ed25519 AAAA… comment`. */
    readonly authorizedKey: string;
    /** The host key's public half, `ssh-ed25519 AAAA…`: what the connections pin. */
    readonly hostPublicKey: string;
    /** The host key, OpenSSH private key format (secret; handed to vm.sh on stdin, never stored in the outputs). */
    readonly hostPrivateKey: string;
    /** The network's id: a bridge made again has lost its taps, so its VMs are replaced with it. */
    readonly network: string;
}

/** What `vm.sh start` prints: one JSON line about the running VM. */
export interface VmReport {
    readonly name: string;
    readonly pid: number;
    readonly bootSeconds: number;
    readonly accel: string;
    readonly kernelRelease: string;
    /** The VM's SSH host key, `ssh-ed25519 AAAA…`. */
    readonly hostKey: string;
    readonly address?: string;
    readonly prefixLength?: number;
    readonly tap?: string;
    readonly bridge?: string;
    readonly mac?: string;
    readonly stateDir?: string;
    readonly memoryMiB?: number;
    readonly noFou?: boolean;
    readonly persist?: boolean;
}

export type VmOutputs = Omit<VmInputs, "hostPrivateKey"> & { readonly report: VmReport };
