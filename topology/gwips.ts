import { Cidr, Family, Ip, cidrContains, cidrsOverlap, formatCidr, formatIp, lastAddress, overlapsNotUnicast, parseCidr } from "../lib/inet";
import type { Claims } from "./checks";
import { DEFAULT_GWIP_POOL, DEFAULT_GWIP_POOL6 } from "./defaults";
import { Context, TunnelRec, endLabel } from "./records";
import { got, str } from "./yaml";

/**
 * Step 4, GWIP allocation: the tunnels without `gwips` get theirs from gwipPool (IPv4) or
 * gwipPool6 (IPv6), once every GWIP written in the file is reserved: in file order, tunnel by
 * tunnel, end a then b, the lowest address of the pool that is not its first, not (IPv4) its
 * last, and not used anywhere in the file.
 */

export interface Pool {
    readonly cidr: Cidr;
    readonly text: string;
    readonly pos: number;
    /** Set when the pool cannot be used (reported already, or reported when first needed). */
    unusable?: string;
    next: bigint;
    reportedUnusable: boolean;
}

export type Pools = Record<Family, Pool | undefined>;

/** Both pools, as written or by default; undefined for one that is invalid (reported). */
export function readPools(cx: Context): Pools {
    return { 4: readPool(cx, "gwipPool", 4, DEFAULT_GWIP_POOL), 6: readPool(cx, "gwipPool6", 6, DEFAULT_GWIP_POOL6) };
}

function readPool(cx: Context, key: string, family: Family, dflt: string): Pool | undefined {
    const { r, root, underlay } = cx;
    const e = root.entries.get(key);
    const text = e ? str(e.value) : dflt;
    const pos = e ? e.value.pos : root.pos;
    const c = parseCidr(text);
    if (!e && !c) {
        throw new Error(`bad built-in pool ${dflt}`);
    }
    if (!c || c.family !== family) {
        const other = family === 4 ? "; IPv6 GWIPs (sit tunnels) come from gwipPool6" : "; IPv4 GWIPs (ipip, gre) come from gwipPool";
        r.add(pos, key, `must be an IPv${family} prefix like ${dflt}${c ? other : ""} (got ${got(e!.value)})`);
        return undefined;
    }
    const shown = formatCidr(c);
    if (c.address !== c.network) {
        r.add(pos, key, `${text} has host bits set; the network is ${shown}`);
        return undefined;
    }
    const maxLength = family === 4 ? 30 : 126;
    if (c.length > maxLength) {
        r.add(pos, key, `${shown} has room for fewer than the 2 GWIPs of one tunnel; use a prefix of length ${maxLength} or shorter`);
        return undefined;
    }
    const special = overlapsNotUnicast(c);
    if (special) {
        r.add(pos, key, `${shown} overlaps addresses that are ${special}; GWIPs must be unicast addresses`);
        return undefined;
    }
    const pool: Pool = { cidr: c, text: shown, pos, next: c.network + 1n, reportedUnusable: false };
    if (underlay && cidrsOverlap(underlay, c)) {
        const why = `overlaps the underlay network ${formatCidr(underlay)}; GWIPs must lie outside it`;
        if (e) {
            r.add(pos, key, `${shown} ${why}`);
            return undefined;
        }
        // The default pool matters only if a GWIP is taken from it.
        pool.unusable = `the default pool ${shown} ${why}: set ${key}`;
    }
    // ssh stacks: the machines' own addresses are no GWIPs (a route to one would swallow its SSH or tunnel packets).
    const taken = cx.hostAddresses.find((h) => cidrContains(c, h.ip));
    if (taken && !pool.unusable) {
        const why = `contains ${formatIp(taken.ip)}, ${taken.what}; GWIPs must not be the machines' own addresses`;
        if (e) {
            r.add(pos, key, `${shown} ${why}`);
            return undefined;
        }
        pool.unusable = `the default pool ${shown} ${why}: set ${key}`;
    }
    return pool;
}

/** GWIPs for the tunnels that give none; an exhausted pool is reported at the tunnel end that got nothing. */
export function allocateGwips(cx: Context, tunnels: TunnelRec[], pools: Pools, claims: Claims): void {
    const { r } = cx;
    for (const t of tunnels) {
        if (t.gwipsGiven || t.family === undefined) {
            continue;
        }
        const pool = pools[t.family];
        const key = t.family === 6 ? "gwipPool6" : "gwipPool";
        if (!pool) {
            continue; // invalid, reported
        }
        if (pool.unusable) {
            if (!pool.reportedUnusable) {
                pool.reportedUnusable = true;
                r.add(pool.pos, key, pool.unusable);
            }
            continue;
        }
        // An IPv4 pool's last address is its broadcast address.
        const last = lastAddress(pool.cidr) - (t.family === 4 ? 1n : 0n);
        for (const i of [0, 1] as const) {
            while (pool.next <= last && claims.gwipUser({ family: t.family, value: pool.next }) !== undefined) {
                pool.next++;
            }
            if (pool.next > last) {
                r.add(t.pos, `${t.path}.gwips`, `${key} ${pool.text} has no free address left for the GWIP of ${endLabel(t, i)}; give gwips or use a larger pool`);
                continue;
            }
            const ip: Ip = { family: t.family, value: pool.next++ };
            claims.claimGwip(ip, t, i, `line ${t.line}, from ${key}`);
            t.gwips[i] = ip;
        }
    }
}
