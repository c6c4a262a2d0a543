import type { Family } from "./inet";
import { MAX_HOST_NAME, MAX_IFNAME, intProblem, isIntIn, portProblem } from "./validate";

/**
 * The tunnel vocabulary, defined once: the protocols a FOU or GUE port carries and their IP
 * protocol numbers, the encapsulations, each option's bounds and default, the default interface
 * name, the kernel modules each protocol needs, and the one check of a tunnel's options that the
 * topology parser and the components both call. A leaf (it imports only leaves of lib/), so the
 * topology parser reads it without loading the Pulumi SDK.
 */

/** The tunnels FOU and GUE carry: IPIP (the guide), sit (IPv6 inside IPv4), GRE. */
export const PROTOCOLS = ["ipip", "sit", "gre"] as const;
export type TunnelProtocol = (typeof PROTOCOLS)[number];

/** The IP protocol number of each protocol's packets: what a FOU port delivers to (`ipproto 4`). */
export const IPPROTO = { ipip: 4, sit: 41, gre: 47 } as const satisfies Record<TunnelProtocol, number>;
export type TunnelIpproto = (typeof IPPROTO)[TunnelProtocol];

/** How a receive port decapsulates: plain FOU (one inner protocol per port) or GUE (a header names it). */
export const ENCAPS = ["fou", "gue"] as const;
export type Encap = (typeof ENCAPS)[number];

/** Kernel modules a tunnel of each protocol needs, in load order. */
export const MODULES: Readonly<Record<TunnelProtocol, readonly string[]>> = {
    ipip: ["fou", "ipip"],
    sit: ["fou", "sit"],
    gre: ["fou", "ip_gre"],
};

/**
 * The kernel's link for a protocol over an underlay of each family: `ip link add … type ipip` over
 * IPv4; over IPv6 the ip6tnl modes (`ipip6` carries IPv4, `ip6ip6` IPv6) and ip6gre. The
 * protocol names what the tunnel carries, whichever family carries it.
 */
export interface LinkKind {
    readonly type: "ipip" | "sit" | "gre" | "ip6tnl" | "ip6gre";
    readonly mode?: "ipip6" | "ip6ip6";
}
const LINK_KINDS: Record<Family, Record<TunnelProtocol, LinkKind>> = {
    4: { ipip: { type: "ipip" }, sit: { type: "sit" }, gre: { type: "gre" } },
    6: { ipip: { type: "ip6tnl", mode: "ipip6" }, sit: { type: "ip6tnl", mode: "ip6ip6" }, gre: { type: "ip6gre" } },
};

export function linkKind(protocol: TunnelProtocol, underlay: Family = 4): LinkKind {
    return LINK_KINDS[underlay][protocol];
}

/** `ipip`, `ip6tnl ipip6`: the kind as `ip -d link show` and the messages name it. */
export function linkKindText(k: LinkKind): string {
    return k.mode === undefined ? k.type : `${k.type} ${k.mode}`;
}

/**
 * Kernel modules a tunnel of `protocol` over an `underlay` of that family needs, in load order.
 * Over IPv6, `fou6` gives ip6tnl and ip6gre their FOU and GUE headers.
 */
export function tunnelModules(protocol: TunnelProtocol, underlay: Family = 4): readonly string[] {
    return underlay === 4 ? MODULES[protocol] : ["fou", "fou6", protocol === "gre" ? "ip6_gre" : "ip6_tunnel"];
}

/** What a tunnel is when nothing says otherwise: the guide's IPIP over FOU, `encap-sport auto`, no checksums, TTL 255. */
export const TUNNEL_OPTION_DEFAULTS = { protocol: "ipip", encap: "fou", sport: "auto", csum: false, ttl: 255 } as const satisfies {
    protocol: TunnelProtocol;
    encap: Encap;
    sport: "auto";
    csum: boolean;
    ttl: number;
};

/** The outer TTL: any the IP header holds except 0, which no router forwards. */
export const TTL_MIN = 1;
export const TTL_MAX = 255;

/** The largest MTU a link takes; the smallest depends on what the tunnel carries ({@link mtuMin}). */
export const MTU_MAX = 65535;
/** The smallest MTU IPv4 allows (RFC 791) and IPv6 allows (RFC 8200). */
const MTU_MIN_OF_FAMILY: Record<Family, number> = { 4: 68, 6: 1280 };
/** The smallest MTU of any protocol: what a value is checked against before its protocol is known. */
export const MTU_FLOOR = MTU_MIN_OF_FAMILY[4];

/** Every tunnel interface is `fto<peer>` unless given (the guide's `ftok2` on k1). */
export const IFNAME_PREFIX = "fto";
/** Interface names (IFNAMSIZ less the NUL) and the host names `fto<peer>` is made of; lib/validate.ts checks both. */
export { MAX_HOST_NAME, MAX_IFNAME };

/** The inner address family: sit carries IPv6, the others IPv4. */
export function innerFamily(protocol: TunnelProtocol): Family {
    return protocol === "sit" ? 6 : 4;
}

/**
 * What the receive port of a tunnel is bound to: on a FOU port, the number of the one protocol
 * it delivers to; a GUE port has none (its header names the protocol), so tunnels of every
 * protocol share it.
 */
export function portIpproto(encap: Encap, protocol: TunnelProtocol): TunnelIpproto | undefined {
    return encap === "gue" ? undefined : IPPROTO[protocol];
}

/** The smallest MTU a tunnel of `protocol` may have: that of the family it carries. */
export function mtuMin(protocol: TunnelProtocol): number {
    return MTU_MIN_OF_FAMILY[innerFamily(protocol)];
}

/**
 * The interface of a tunnel end when none is given: `fto` and the peer's name. A host name has
 * at most {@link MAX_HOST_NAME} characters, so the result fits in {@link MAX_IFNAME}.
 */
export function defaultIfname(peerName: string): string {
    return `${IFNAME_PREFIX}${peerName}`;
}

export function isProtocol(value: unknown): value is TunnelProtocol {
    return (PROTOCOLS as readonly unknown[]).includes(value);
}

export function isEncap(value: unknown): value is Encap {
    return (ENCAPS as readonly unknown[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// The one check of a tunnel's options.

/** A tunnel's options as a caller holds them before they are checked; an absent one takes its default. */
export interface TunnelOptionValues {
    readonly protocol?: unknown;
    readonly encap?: unknown;
    /** The UDP port both ends receive on (and send to). */
    readonly port?: unknown;
    readonly sport?: unknown;
    readonly mtu?: unknown;
    readonly ttl?: unknown;
}
export type TunnelOptionKey = keyof TunnelOptionValues;

/** One option that breaks a rule: `path` is the caller's name for it, `message` what is wrong. */
export interface OptionProblem {
    readonly field: TunnelOptionKey;
    readonly path: string;
    readonly message: string;
}

/** A rule of one option: the value, as the caller shows it, and the protocol when that one is valid. */
type Rule = (value: unknown, shown: string, protocol: TunnelProtocol | undefined) => string | undefined;

function oneOf(allowed: readonly string[], value: unknown, shown: string): string | undefined {
    return allowed.includes(value as string) ? undefined : `must be one of ${allowed.join(", ")} (got ${shown})`;
}

/**
 * A value of the wrong type or beyond every protocol's bounds (the bounds of its protocol when
 * known), else one below the smallest MTU of what its protocol carries.
 */
function mtuProblem(value: unknown, shown: string, protocol: TunnelProtocol | undefined): string | undefined {
    if (!isIntIn(value, MTU_FLOOR, MTU_MAX)) {
        return intProblem(value, protocol === undefined ? MTU_FLOOR : mtuMin(protocol), MTU_MAX, shown);
    }
    if (protocol === undefined || value >= mtuMin(protocol)) {
        return undefined;
    }
    const min = mtuMin(protocol);
    const family = innerFamily(protocol);
    return `${shown} is below ${min}, the smallest MTU IPv${family} allows, and a ${protocol} tunnel carries IPv${family}; use ${min} to ${MTU_MAX}`;
}

/** Each option's rule, in the order problems are reported. */
const RULES: Record<TunnelOptionKey, Rule> = {
    protocol: (v, shown) => oneOf(PROTOCOLS, v, shown),
    encap: (v, shown) => oneOf(ENCAPS, v, shown),
    port: (v, shown) => portProblem(v, shown),
    sport: (v, shown) => (v === "auto" || portProblem(v) === undefined ? undefined : `must be "auto" or a UDP port number from 1 to 65535 (got ${shown})`),
    mtu: mtuProblem,
    ttl: (v, shown) => intProblem(v, TTL_MIN, TTL_MAX, shown),
};

/**
 * Every problem of a tunnel's options, each named by `path` (`IpipFouLink x: mtu`,
 * `tunnels[0].mtu`) so that each caller keeps its own form of message. `shown` is how the caller
 * quotes a rejected value (default its JSON; a topology file adds where a default came from).
 * An undefined option is absent and fine. The MTU is held to its protocol's bound only when the
 * protocol is given and valid.
 */
export function tunnelOptionProblems(
    values: TunnelOptionValues,
    path: (field: TunnelOptionKey) => string,
    shown: (field: TunnelOptionKey) => string = (field) => JSON.stringify(values[field]),
): OptionProblem[] {
    const protocol = isProtocol(values.protocol) ? values.protocol : undefined;
    const problems: OptionProblem[] = [];
    for (const field of Object.keys(RULES) as TunnelOptionKey[]) {
        const value = values[field];
        const message = value === undefined ? undefined : RULES[field](value, shown(field), protocol);
        if (message !== undefined) {
            problems.push({ field, path: path(field), message });
        }
    }
    return problems;
}

/** A problem as a component reports it: `IpipFouLink x: mtu must be …`. */
export function problemText(p: OptionProblem): string {
    return `${p.path} ${p.message}`;
}

// ---------------------------------------------------------------------------------------------
// A host's kernel step, as a topology file and the KernelUpgrade component both take it.

/** Seconds the verify step waits for SSH after the reboot into a new kernel: the default and the bounds. */
export const DEFAULT_REBOOT_TIMEOUT = 600;
export const MIN_REBOOT_TIMEOUT = 60;
export const MAX_REBOOT_TIMEOUT = 3600;
