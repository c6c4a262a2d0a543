import type { Family } from "../lib/inet";
import { Encap, MODULES, TunnelIpproto, tunnelModules } from "../lib/vocabulary";
import type { KernelSpec, PortSpec, TopologySpec, TunnelSpec } from "./topologySpec";

/**
 * What FouTopology declares, decided from a topology alone: per host, the modules it loads,
 * whether it forwards, its receive ports and firewall rules, its tunnel ends; and the order in
 * which hosts upgrade their kernels. Plain data from plain data: it loads no Pulumi SDK, so every
 * rule of it is tested as a function (test/unit/topologyPlan.test.ts), and FouTopology only turns
 * each entry into resources. Hosts are named, never resolved: their addresses are the machines'.
 */
export interface TopologyPlan {
    /** The managed hosts with a tunnel end, in topology order; a host with none gets no steps, a far end none either. */
    readonly hosts: readonly HostPlan[];
    /** The kernel upgrades, in the order they run: each waits for the one before it. */
    readonly upgrades: readonly UpgradePlan[];
}

export interface HostPlan {
    readonly host: string;
    /** The kernel modules of its tunnels' protocols, in load order (fou first). */
    readonly modules: readonly string[];
    /** Turn on IPv4 forwarding: one of its tunnels carries routed prefixes. */
    readonly ipForward: boolean;
    /** Its tunnel ends, in topology order. */
    readonly ends: readonly EndPlan[];
    /** Its receive ports, by port number. */
    readonly ports: readonly ReceivePortPlan[];
    /** Its nftables rules; undefined with `firewall: false`. */
    readonly firewall?: FirewallPlan;
}

/** One tunnel's end on a host. */
export interface EndPlan {
    readonly tunnel: string;
    /** Its index in the tunnel's `ends`. */
    readonly end: 0 | 1;
    /** The host at the other end. */
    readonly peer: string;
    /** The peer is a far end the stack does not manage (`externalHosts`): nothing is built there. */
    readonly peerExternal: boolean;
}

/** One receive port on a host, shared by every tunnel of its binding. */
export interface ReceivePortPlan {
    readonly port: number;
    readonly encap: Encap;
    /** The inner protocol of a FOU port; undefined for GUE. */
    readonly ipproto?: TunnelIpproto;
    /** 6: an IPv6 port (`-6`); absent: IPv4. */
    readonly family?: Family;
    /** Re-added at boot: a tunnel using it persists. */
    readonly persist: boolean;
    /** The tunnels using it, in topology order. */
    readonly tunnels: readonly string[];
    /**
     * The managed hosts of those tunnels, first appearance first: each is prepared before the
     * port is added (a far end is its operator's).
     */
    readonly preparedFirst: readonly string[];
}

/** A host's nftables table: each receive port open to the peers of the tunnels using it. */
export interface FirewallPlan {
    /** Per receive port (the host's order), the peer hosts, one per tunnel using it; far ends too. */
    readonly ports: readonly { readonly port: number; readonly peers: readonly string[] }[];
    /** Loaded again at boot, as the persisted ports come back: any of its ports persists. */
    readonly persist: boolean;
}

/** A host's kernel upgrade, a link in the one chain of upgrades. */
export interface UpgradePlan {
    readonly host: string;
    readonly kernel: KernelSpec;
    /** The modules the new kernel must have: the host's, or the guide's when it has no tunnel. */
    readonly modules: readonly string[];
    /** The host whose upgrade runs just before; undefined for the first. */
    readonly after?: string;
}

/** The plan of a validated topology (every default filled in, its ports those of its tunnels). */
export function planTopology(spec: TopologySpec): TopologyPlan {
    const hosts = spec.hosts.flatMap((h) => {
        const ends = endsOf(spec, h.name);
        return ends.length === 0 ? [] : [hostPlan(spec, h.name, ends)];
    });
    return { hosts, upgrades: upgradeChain(spec) };
}

function hostPlan(spec: TopologySpec, host: string, ends: EndPlan[]): HostPlan {
    const mine = spec.tunnels.filter((t) => ends.some((e) => e.tunnel === t.name));
    const managed = new Set(spec.hosts.map((h) => h.name));
    const ports = spec.ports.filter((p) => p.host === host).map((p) => receivePort(spec.tunnels, p, managed));
    return {
        host,
        modules: modulesOf(mine),
        // A GWIP-only tunnel ends at its hosts: a host becomes a router only to carry routed prefixes.
        ipForward: mine.some((t) => t.ends.some((e) => e.routes.length > 0)),
        ends,
        ports,
        ...((spec.firewall ?? true) ? { firewall: firewallPlan(spec.tunnels, host, ports) } : {}),
    };
}

function endsOf(spec: TopologySpec, host: string): EndPlan[] {
    const far = new Set((spec.externalHosts ?? []).map((h) => h.name));
    return spec.tunnels.flatMap((t) =>
        ([0, 1] as const)
            .filter((i) => t.ends[i].host === host)
            .map((i) => ({ tunnel: t.name, end: i, peer: t.ends[1 - i].host, peerExternal: far.has(t.ends[1 - i].host) })),
    );
}

/** Each protocol's modules (by underlay) in load order, the first tunnel's first: every list starts with fou. */
function modulesOf(tunnels: readonly TunnelSpec[]): string[] {
    return [...new Set(tunnels.flatMap((t) => tunnelModules(t.protocol, t.underlay)))];
}

function receivePort(tunnels: readonly TunnelSpec[], p: PortSpec, managed: ReadonlySet<string>): ReceivePortPlan {
    const users = tunnels.filter((t) => p.tunnels.includes(t.name));
    return {
        port: p.port,
        encap: p.encap,
        ...(p.ipproto !== undefined ? { ipproto: p.ipproto } : {}),
        ...(p.family === 6 ? { family: p.family } : {}),
        persist: p.persist,
        tunnels: users.map((t) => t.name),
        preparedFirst: [...new Set(users.flatMap((t) => t.ends.map((e) => e.host)))].filter((h) => managed.has(h)),
    };
}

/**
 * A port that comes back at boot comes back closed: the rules persist with any of the ports. A
 * peer is listed once per port, however many tunnels to it share the port (two tunnels of
 * different protocols between the same hosts may): nft refuses an element twice in one set.
 */
function firewallPlan(tunnels: readonly TunnelSpec[], host: string, ports: readonly ReceivePortPlan[]): FirewallPlan {
    const peersOf = (p: ReceivePortPlan) => [
        ...new Set(tunnels.filter((t) => p.tunnels.includes(t.name)).flatMap((t) => t.ends.filter((e) => e.host !== host).map((e) => e.host))),
    ];
    return { ports: ports.map((p) => ({ port: p.port, peers: peersOf(p) })), persist: ports.some((p) => p.persist) };
}

/**
 * The hosts that ask for a kernel with fou, one at a time in topology order (each install waits
 * for the previous host's verify), so a mesh keeps most of its paths while one host reboots.
 */
function upgradeChain(spec: TopologySpec): UpgradePlan[] {
    const asked = spec.hosts.filter((h) => h.kernel?.upgrade);
    return asked.map((h, i) => {
        const modules = modulesOf(spec.tunnels.filter((t) => t.ends.some((e) => e.host === h.name)));
        return {
            host: h.name,
            kernel: h.kernel!,
            modules: modules.length > 0 ? modules : MODULES.ipip,
            ...(i > 0 ? { after: asked[i - 1].name } : {}),
        };
    });
}
