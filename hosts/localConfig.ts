/**
 * Settings of the `local` hosts (qemu VMs on a bridge of this machine, hosts/local.ts), as
 * config.ts reads them from the stack: `localGateway`, `localVmMemory`, and one VM per host of
 * the topology (`localVms` for the guide's two, else the topology file's hosts).
 */

/** One local VM: its name (used in interface names) and underlay address. */
export interface LocalVmSettings {
    readonly name: string;
    readonly address: string;
    /** false boots the VM with its fou module made unusable: the "kernel too old" case. */
    readonly fou: boolean;
    /** An IPv6 underlay address the stack puts on the VM (components/underlayAddress.ts); its tunnels go over it. */
    readonly underlay6?: string;
    /** Put the IPv6 underlay address back at boot: a tunnel of the VM persists. */
    readonly underlay6Persist?: boolean;
}

export interface LocalSettings {
    /** This machine's address on the VM bridge, with the prefix length: 198.51.100.1/24. */
    readonly gateway: string;
    /** One VM per topology host. */
    readonly vms: LocalVmSettings[];
    readonly memoryMb: number;
}
