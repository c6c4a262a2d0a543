import type { Family } from "../lib/inet";
import type { FullSshLogin } from "../lib/sshLogin";
import type { ExternalHostSpec, HostSpec, KernelSpec, PortSpec, TopologySpec, TunnelEndSpec, TunnelSpec } from "../components/topologySpec";
import { Encap, IPPROTO, TunnelProtocol, innerFamily } from "../lib/vocabulary";

/**
 * The topology model: what a topology file (or the stack's guide keys) describes, validated,
 * with every default filled in and every GWIP allocated. It is the plain TopologySpec that
 * FouTopology takes (components/topologySpec.ts), plus what only the hosts need to know.
 */

export type { Encap, ExternalHostSpec, KernelSpec, PortSpec, TunnelEndSpec, TunnelProtocol, TunnelSpec };

export interface TopologyHost extends HostSpec {
    /**
     * local stacks: the VM's underlay address on the bridge (defaulted, see docs); ssh stacks: the
     * host's underlay address (`underlayAddress`, else `ssh.address`). undefined on aws.
     */
    readonly address?: string;
    /** local stacks: the VM's IPv6 underlay address, when the file gives one; its tunnels go over it. */
    readonly underlayAddress?: string;
    /** local stacks only: false boots the VM with fou unusable (tests of the kernel check). Default true. */
    readonly fou: boolean;
    /** ssh stacks: how to log in (the host's `ssh:` block), every default filled in. */
    readonly ssh?: TopologySsh;
    /** ssh stacks: the underlay device when the file gives one (else the host reports it). */
    readonly device?: string;
}

/**
 * How an ssh stack logs in to a host: the host's `ssh:` block as a login of the login model
 * (lib/sshLogin.ts) with every default filled in, and whether its steps run through sudo. It
 * holds no key: a file holds no secrets, the stack's key and agent join it in the stack settings.
 */
export type TopologySsh = FullSshLogin<never> & { readonly sudo: boolean };

export interface Topology extends TopologySpec {
    /** The hosts the stack manages (each a machine of the stack's kind). */
    readonly hosts: TopologyHost[];
    /** The far ends it does not manage (`external:` entries); none on aws stacks. */
    readonly externalHosts: ExternalHostSpec[];
    readonly tunnels: TunnelSpec[];
    /** Every receive port, host order then port; derived from the tunnels. */
    readonly ports: PortSpec[];
}

export interface TopologyOptions {
    /**
     * "local": hosts are VMs on this machine's bridge; "aws": EC2 instances (no address/fou keys
     * allowed); "ssh": machines that exist already, each with an `ssh:` block saying how to log in.
     */
    readonly kind: "local" | "aws" | "ssh";
    /** local: this machine's address on the VM bridge with its length, e.g. "198.51.100.1/24". */
    readonly underlay?: string;
}

/** A tunnel's values, each from the tunnel, from `defaults` or built in (defaults.ts TUNNEL_DEFAULTS). */
export interface TunnelValues {
    readonly protocol: TunnelProtocol;
    readonly encap: Encap;
    readonly port: number;
    readonly sport: number | "auto";
    readonly csum: boolean;
    readonly mtu: number | undefined;
    readonly ttl: number;
    readonly persist: boolean;
}

/**
 * A tunnel of the model: ipproto and family follow from the protocol; no mtu when the kernel
 * chooses; `underlay` only when it is IPv6.
 */
export function tunnelSpec(name: string, v: TunnelValues, ends: readonly [TunnelEndSpec, TunnelEndSpec], underlay: Family = 4): TunnelSpec {
    return {
        name,
        protocol: v.protocol,
        ipproto: IPPROTO[v.protocol],
        family: innerFamily(v.protocol),
        ...(underlay === 6 ? { underlay } : {}),
        encap: v.encap,
        port: v.port,
        sport: v.sport,
        csum: v.csum,
        ...(v.mtu !== undefined ? { mtu: v.mtu } : {}),
        ttl: v.ttl,
        persist: v.persist,
        ends,
    };
}

/** A tunnel's name when it gives none: `<a>-<b>`. */
export function defaultTunnelName(a: string, b: string): string {
    return `${a}-${b}`;
}
