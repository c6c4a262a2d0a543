import { Cidr, Ip, checkUnderlay, cidrContains, formatCidr, formatIp, parseCidr, parseIp } from "../lib/inet";
import type { Context } from "./records";
import { YMap, got } from "./yaml";

/** The on-link prefix length of the VMs' IPv6 underlay addresses: one link, the bridge. */
export const LOCAL_UNDERLAY6_LENGTH = 64;

/** The local hosts' IPv6 underlay addresses read so far: who has each, and the first one's prefix. */
export interface LocalUnderlays {
    readonly owner: Map<bigint, { name: string; line: number }>;
    first?: { readonly prefix: Cidr; readonly name: string; readonly line: number };
}

export function localUnderlays(): LocalUnderlays {
    return { owner: new Map() };
}

/**
 * A local host's `underlayAddress`: an IPv6 address the VM gets on its bridge port, which its
 * tunnels then travel over (the VM is still reached over SSH at its IPv4 `address`). The VMs
 * share one link without a router, so every such address lies in the /64 of the first; each is
 * a machine's own, which GWIPs and routed prefixes keep clear of. Undefined when absent or wrong
 * (reported).
 */
export function readLocalUnderlay(cx: Context, item: YMap, path: string, name: string | undefined, seen: LocalUnderlays): Ip | undefined {
    const { r } = cx;
    const e = item.entries.get("underlayAddress");
    if (!e) {
        return undefined;
    }
    const at = `${path}.underlayAddress`;
    const v = e.value.kind === "scalar" ? e.value.value : got(e.value);
    const ip = parseIp(v);
    if (ip?.family === 4) {
        r.add(e.value.pos, at, `${formatIp(ip)} is IPv4: a local VM's IPv4 underlay address is its address on the bridge; underlayAddress gives it an IPv6 one, like 2001:db8:5155::151`);
        return undefined;
    }
    if (!r.check(e.value.pos, at, checkUnderlay(at, v, 6))) {
        return undefined;
    }
    const a = formatIp(ip!);
    const line = r.line(e.value.pos);
    const taken = seen.owner.get(ip!.value);
    const prefix = parseCidr(`${a}/${LOCAL_UNDERLAY6_LENGTH}`)!;
    const bad = taken
        ? `${a} is already the underlay address of ${taken.name} (line ${taken.line}); each host needs its own`
        : seen.first && !cidrContains(seen.first.prefix, ip!)
          ? `${a} is outside ${formatCidr(seen.first.prefix)}, the prefix of ${seen.first.name}'s (line ${seen.first.line}): the VMs share one link, the bridge, and reach each other's IPv6 addresses only within one /${LOCAL_UNDERLAY6_LENGTH}`
          : undefined;
    if (bad) {
        r.add(e.value.pos, at, bad);
        return undefined;
    }
    const label = name ?? path;
    seen.owner.set(ip!.value, { name: label, line });
    seen.first ??= { prefix: { ...prefix, address: prefix.network }, name: label, line };
    cx.hostAddresses.push({ ip: ip!, what: `the underlay address of ${label} (line ${line})` });
    return ip;
}
