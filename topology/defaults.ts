import { Cidr, Ip, parseCidr } from "../lib/inet";
import { TUNNEL_OPTION_DEFAULTS } from "../lib/vocabulary";
import type { TunnelValues } from "./model";

/**
 * Every built-in value of the topology model, in one place: the guide's port, GWIPs and hosts,
 * and the local bridge its VMs live on (TEST-NET-2; this machine's uplink uses TEST-NET-1).
 * A topology file or the stack's keys override them; docs/topology.md describes each.
 */

export const DEFAULT_PORT = 5555;
export const DEFAULT_GWIP_POOL = "10.10.10.0/24";
export const DEFAULT_GWIP_POOL6 = "fd00:10:10:10::/64";

/** What a tunnel is when neither it nor `defaults` says otherwise: the guide's IPIP over FOU. */
export const TUNNEL_DEFAULTS: TunnelValues = { ...TUNNEL_OPTION_DEFAULTS, port: DEFAULT_PORT, mtu: undefined, persist: false };

/** The local bridge network with this machine's address on it (the gateway of the VMs). */
export const DEFAULT_UNDERLAY = "198.51.100.1/24";

/** Local hosts without an address get the network + 151 + their index: the guide's k1 .151, k2 .152. */
export const FIRST_HOST_OFFSET = 151n;

/** The address a local host gets when it gives none: host number `index` (from 0) of the bridge. */
export function defaultHostAddress(underlay: Cidr, index: number): Ip {
    return { family: 4, value: underlay.network + FIRST_HOST_OFFSET + BigInt(index) };
}

/** The guide's two hosts and their GWIPs: a stack without a topology file builds these. */
export const GUIDE_HOSTS = ["k1", "k2"] as const;
export const GUIDE_GWIPS = ["10.10.10.1", "10.10.10.2"] as const;

/** DEFAULT_UNDERLAY parsed; a typo in it is a programming error. */
export function defaultUnderlay(): Cidr {
    const c = parseCidr(DEFAULT_UNDERLAY);
    if (!c) {
        throw new Error(`bad built-in underlay ${DEFAULT_UNDERLAY}`);
    }
    return c;
}
