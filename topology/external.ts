import { Ip, checkUnderlay, cidrContains, formatCidr, formatIp, lastAddress, notUnicast, parseIp } from "../lib/inet";
import type { Context, HostRec } from "./records";
import { EXTERNAL_KEYS, HOST_KEYS_EXTERNAL, checkKeys } from "./schema";
import { YMap, got, str } from "./yaml";

/**
 * Far ends the stack does not manage: a host entry `{name: r1, external: {address: 198.51.100.77}}`
 * is a machine the stack never logs in to (a router, another team's host). Tunnels join it to
 * managed hosts as usual; the stack builds and checks only the managed ends, and says what the
 * far end must run (components/farEnd.ts). Only its underlay address is known of it.
 */

/** A far end's address as read, checked against the other machines once every host is read. */
export interface ExternalRead {
    readonly name: string;
    readonly ip: Ip;
    readonly pos: number;
    readonly path: string;
}

/** Why a key of a managed host is not allowed on an external one. */
function managedOnly(key: string): string | undefined {
    const why: Record<string, string> = {
        ssh: "the stack never logs in to an external host",
        kernel: "the stack never logs in to an external host, so it cannot upgrade its kernel",
        underlayAddress: "an external host's underlay address is external.address",
        address: "an external host's underlay address is external.address",
        device: "the far end's device is its operator's choice (its tunnels are bound to none)",
        fou: "only local VMs can be booted with fou made unusable",
    };
    return why[key] === undefined ? undefined : `not allowed for an external host: ${why[key]}; an external host has only name and external`;
}

/**
 * The `external:` block of host entry `item`: a mapping with the far end's underlay address (IPv4
 * or IPv6: its tunnels go over that family, so their managed ends must be of it too).
 * Returns the address when valid (every problem reported at its node); not on aws stacks, whose
 * instances reach the world through a NAT that the tunnels' addresses would have to cross.
 */
export function readExternal(cx: Context, item: YMap, path: string, name: string | undefined): ExternalRead | undefined {
    const { r } = cx;
    checkKeys(r, item, path, "external host", HOST_KEYS_EXTERNAL, managedOnly);
    const e = item.entries.get("external")!;
    const at = `${path}.external`;
    if (cx.kind === "aws") {
        r.add(
            e.keyPos,
            at,
            "not supported on aws stacks: an EC2 instance's underlay address is private and reaches a far end only through NAT; use an ssh stack for the instances (docs/topology.md)",
        );
        return undefined;
    }
    if (e.value.kind !== "map") {
        r.add(e.value.pos, at, `must be a mapping like {address: 198.51.100.77}: the far end's underlay address (got ${got(e.value)})`);
        return undefined;
    }
    checkKeys(r, e.value, at, "external", EXTERNAL_KEYS);
    const a = e.value.entries.get("address");
    if (!a) {
        r.add(e.value.pos, `${at}.address`, "required: the far end's underlay address, which its tunnels are sent to, like 198.51.100.77");
        return undefined;
    }
    const ip = parseIp(str(a.value));
    if (!ip) {
        r.add(a.value.pos, `${at}.address`, `must be an IPv4 or IPv6 address like 198.51.100.77 or 2001:db8::77 (got ${got(a.value)})`);
        return undefined;
    }
    const shown = formatIp(ip);
    const special = checkUnderlay("", shown) === undefined ? undefined : (notUnicast(ip) ?? "in ::ffff:0:0/96 (an IPv4-mapped address: write the IPv4 address)");
    const u = cx.underlay;
    const bad = special
        ? `${shown} is ${special}; a far end needs a unicast address`
        : u && ip.family === 4 && ip.value === u.network
          ? `${shown} is the address of the underlay network ${formatCidr(u)} itself; a far end needs a host address`
          : u && cidrContains(u, ip) && ip.value === lastAddress(u)
            ? `${shown} is the broadcast address of the underlay network ${formatCidr(u)}`
            : undefined;
    if (bad) {
        r.add(a.value.pos, `${at}.address`, bad);
        return undefined;
    }
    return name === undefined ? undefined : { name, ip, pos: a.value.pos, path: `${at}.address` };
}

/**
 * Once every host is read: a far end's address is no managed host's (nor its SSH path's) and no
 * other far end's; each is then reserved, so GWIPs, pools and routed prefixes keep clear of it.
 */
export function checkExternalAddresses(cx: Context, managed: readonly HostRec[], externals: readonly ExternalRead[]): void {
    const { r } = cx;
    const ok = new Set<string>();
    const seen = new Map<string, ExternalRead>();
    for (const x of externals) {
        const same = (ip: Ip | undefined) => ip?.family === x.ip.family && ip.value === x.ip.value;
        const a = formatIp(x.ip);
        const host = managed.find((h) => same(h.address) || same(h.underlay));
        const machine = cx.hostAddresses.find((h) => same(h.ip));
        const first = seen.get(a);
        const bad = host
            ? `${a} is already the address of ${host.name}, a host the stack manages; a far end is another machine`
            : machine
              ? `${a} is ${machine.what}; a far end is another machine`
              : first
                ? `${a} is already the address of external host ${first.name} (line ${r.line(first.pos)}); each host needs its own`
                : undefined;
        if (bad) {
            r.add(x.pos, x.path, bad);
            continue;
        }
        seen.set(a, x);
        ok.add(x.name);
    }
    for (const x of externals.filter((e) => ok.has(e.name))) {
        cx.hostAddresses.push({ ip: x.ip, what: `the address of external host ${x.name} (line ${r.line(x.pos)})` });
    }
}
