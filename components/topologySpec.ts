import type { Family } from "../lib/inet";
import type { Encap, TunnelIpproto, TunnelProtocol } from "../lib/vocabulary";

/**
 * What FouTopology builds, as plain data: the hosts by name, each tunnel with its two ends, and
 * the receive port each host opens. Whoever makes one has validated it and filled in every
 * default (topology/ does, from a topology file or from the stack's guide keys); FouTopology
 * only declares resources from it.
 */
export interface TopologySpec {
    /** Where it came from, used in messages (a path, or a label for the built-in default). */
    readonly source: string;
    readonly hosts: readonly HostSpec[];
    /**
     * Far ends this stack does not manage (a router, another team's host): tunnels of `tunnels`
     * may end on them, but nothing is declared on them and they are in no `ports`; their part is
     * the operator's (components/farEnd.ts says what to run). Default none.
     */
    readonly externalHosts?: readonly ExternalHostSpec[];
    readonly tunnels: readonly TunnelSpec[];
    /** Every receive port, host order then port; each shared by the tunnels listed in it. */
    readonly ports: readonly PortSpec[];
    /** Close each receive port to all but its tunnels' peers (nftables); default true. */
    readonly firewall?: boolean;
}

export interface HostSpec {
    /** The machine's name: the key of FouTopology's `hosts`. */
    readonly name: string;
    /** ssh hosts: bring the host to a kernel with fou first (components/kernelUpgrade.ts). */
    readonly kernel?: KernelSpec;
}

/** A far end the stack does not manage: only its name and the underlay address its tunnels are sent to. */
export interface ExternalHostSpec {
    readonly name: string;
    /** Its underlay address (IPv4): the managed ends' `remote`, the firewall's peer. */
    readonly address: string;
}

/** A host's `kernel:` block: whether and how to upgrade its kernel to one with fou. */
export interface KernelSpec {
    /** Install a kernel with fou and reboot into it when the running one lacks it; nothing reboots unless true. */
    readonly upgrade: boolean;
    /** The kernel package; undefined: the distribution's default. */
    readonly package?: string;
    /** An apt source line (`deb [options] http(s)://… suite components`) to install it from. */
    readonly repository?: string;
    /** The repository's ASCII-armored public key. */
    readonly key?: string;
    /** Seconds to wait for SSH after the reboot (60 to 3600). */
    readonly rebootTimeout: number;
}

export interface TunnelEndSpec {
    /** A host of `hosts`, or of `externalHosts` (at most one end of a tunnel). */
    readonly host: string;
    /** GWIP: IPv4 for ipip/gre, IPv6 for sit; canonical text (lib/inet.ts formatIp). */
    readonly gwip: string;
    /** Tunnel interface on this host; default `fto<peer name>` (the guide's ftok2 on k1). */
    readonly ifname: string;
    /** Prefixes this host routes into the tunnel (they live behind the peer), canonical (formatCidr). */
    readonly routes: string[];
}

export interface TunnelSpec {
    readonly name: string;
    readonly protocol: TunnelProtocol;
    /** 4 for ipip, 41 for sit, 47 for gre (lib/vocabulary.ts IPPROTO). */
    readonly ipproto: TunnelIpproto;
    /** Inner address family: 6 for sit, else 4. */
    readonly family: Family;
    /**
     * The underlay's family, of both ends' addresses: 6 makes the ports `ip fou add … -6` and the
     * links ip6tnl or ip6gre (lib/vocabulary.ts linkKind). Absent: 4.
     */
    readonly underlay?: Family;
    readonly encap: Encap;
    /** UDP port on both hosts (receive port and encap-dport), the guide's 5555. */
    readonly port: number;
    /** encap-sport: "auto" or a fixed port. */
    readonly sport: number | "auto";
    /** UDP checksums on the outer packets when true (encap-csum; encap-udp6-csum over IPv6). */
    readonly csum: boolean;
    /** Tunnel MTU; undefined = the kernel's default. */
    readonly mtu?: number;
    readonly ttl: number;
    /** Write a boot-time unit on both hosts so the tunnel survives a reboot. */
    readonly persist: boolean;
    readonly ends: readonly [TunnelEndSpec, TunnelEndSpec];
}

/** One receive port on one host, shared by every tunnel that uses the same (port, encap, ipproto). */
export interface PortSpec {
    readonly host: string;
    readonly port: number;
    readonly encap: Encap;
    /** The inner protocol a FOU port delivers to; undefined for GUE (its header names the protocol). */
    readonly ipproto?: TunnelIpproto;
    /** 6: an IPv6 port (`ip fou add … -6`), for tunnels over an IPv6 underlay. Absent: 4. */
    readonly family?: Family;
    /** True when any tunnel using the port persists. */
    readonly persist: boolean;
    /** Names of the tunnels using the port, in file order. */
    readonly tunnels: string[];
}
