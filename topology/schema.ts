import { Cidr, Family, checkCidr, cidrContains, cidrsOverlap, formatCidr, formatIp, parseCidr } from "../lib/inet";
import { TunnelOptionKey, tunnelOptionProblems } from "../lib/vocabulary";
import type { HostAddress } from "./records";
import type { TunnelValues } from "./model";
import { Report, YEntry, YMap, YNode, child, got, str } from "./yaml";

/**
 * Step 2, the schema: which keys each part of a topology file may have, and how one value is
 * read (types, ranges, prefixes), each problem placed at its node. The sections (hosts.ts,
 * tunnels.ts) apply these field by field.
 */

export const TUNNEL_NAME = /^[a-z][a-z0-9-]{0,30}$/;

export const TOP_KEYS = ["hosts", "gwipPool", "gwipPool6", "defaults", "tunnels", "firewall"];
export const HOST_KEYS_LOCAL = ["name", "address", "underlayAddress", "fou"];
export const HOST_KEYS_AWS = ["name"];
export const HOST_KEYS_SSH = ["name", "ssh", "underlayAddress", "device", "kernel"];
/** A far end the stack does not manage: its name and `external:` only (topology/external.ts). */
export const HOST_KEYS_EXTERNAL = ["name", "external"];
export const EXTERNAL_KEYS = ["address"];
/** The `kernel:` block of an ssh host (topology/kernel.ts). */
export const KERNEL_KEYS = ["upgrade", "package", "repository", "key", "rebootTimeout"];
/** The `ssh:` block of a host on an ssh stack, and its `proxy:` (the jump host). */
export const SSH_KEYS = ["address", "port", "user", "hostKey", "sudo", "proxy"];
export const PROXY_KEYS = ["address", "port", "user", "hostKey"];
/** Tunnel keys that `defaults` may set. */
export const VALUE_KEYS = ["protocol", "encap", "port", "sport", "csum", "mtu", "ttl", "persist"] as const;
/** Tunnel keys that only make sense per tunnel. */
export const OWN_KEYS = ["hosts", "name", "gwips", "interfaces", "routes"];
export const TUNNEL_KEYS = ["hosts", "name", ...VALUE_KEYS, "gwips", "interfaces", "routes"];

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
    let prev = [...Array(b.length + 1).keys()];
    for (let i = 1; i <= a.length; i++) {
        const cur = [i];
        for (let j = 1; j <= b.length; j++) {
            cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
        prev = cur;
    }
    return prev[b.length];
}

/** Reports every key of `map` not in `allowed` (unless `special` has its own message for it). */
export function checkKeys(r: Report, map: YMap, path: string, what: string, allowed: readonly string[], special: (key: string) => string | undefined = () => undefined): void {
    for (const [key, e] of map.entries) {
        if (allowed.includes(key)) {
            continue;
        }
        const own = special(key);
        if (own) {
            r.add(e.keyPos, child(path, key), own);
            continue;
        }
        // A key the typo begins (prot: protocol), else the nearest within two edits (gwip: gwips).
        const k = key.toLowerCase();
        const near =
            (k.length >= 3 ? allowed.find((a) => a.toLowerCase().startsWith(k)) : undefined) ??
            allowed.filter((a) => distance(a.toLowerCase(), k) <= 2).sort((a, b) => distance(a.toLowerCase(), k) - distance(b.toLowerCase(), k))[0];
        r.add(e.keyPos, child(path, key), `unknown key${near ? ` (did you mean ${near}?)` : ""}; ${what} keys are ${allowed.join(", ")}`);
    }
}

// ---------------------------------------------------------------------------------------------
// Tunnel values that `defaults` may set.

export type ValueKey = keyof TunnelValues;
type Read<T> = { value: T } | { error: string };

/**
 * A tunnel option, held to its rule in lib/vocabulary.ts. A node that is no scalar (a list, a
 * mapping) fails every rule; any value is shown as the file has it (`got`). The MTU's bound for
 * sit is checked once the protocol is known (tunnels.ts).
 */
function readOption<K extends TunnelOptionKey>(k: K): (n: YNode, path: string) => Read<TunnelValues[K]> {
    return (n, path) => {
        const value = n.kind === "scalar" ? (n.value ?? null) : n;
        const problem = tunnelOptionProblems({ [k]: value }, () => path, () => got(n))[0];
        return problem ? { error: problem.message } : { value: value as TunnelValues[K] };
    };
}

export function readBool(n: YNode): Read<boolean> {
    if (n.kind === "scalar" && typeof n.value === "boolean") {
        return { value: n.value };
    }
    const s = str(n);
    const hint = s !== undefined && /^(yes|no|on|off|y|n)$/i.test(s) ? `; YAML 1.2 reads ${s} as a string` : "";
    return { error: `must be true or false (got ${got(n)}${hint})` };
}

/** How each tunnel value is read, in a tunnel or in `defaults`. */
export const READ: { [K in ValueKey]: (n: YNode, path: string) => Read<TunnelValues[K]> } = {
    protocol: readOption("protocol"),
    encap: readOption("encap"),
    port: readOption("port"),
    sport: readOption("sport"),
    csum: readBool,
    mtu: readOption("mtu"),
    ttl: readOption("ttl"),
    persist: readBool,
};

/** A tunnel's value for a key, and where it came from for messages. */
export interface Field<T> {
    readonly value: T;
    /** The node that set it, or the tunnel's mapping when it comes from defaults or the built-in default. */
    readonly pos: number;
    readonly path: string;
    /** "" or " (from defaults.port, line 7)". */
    readonly from: string;
}

/** The values `defaults` sets, with the line that sets each. */
export type Defaults = { [K in ValueKey]?: { value: TunnelValues[K]; line: number } };

/** A prefix a host routes into a tunnel: of the tunnel's family, no host bits, no default route, clear of the bridge. */
export function readRoute(
    r: Report,
    n: YNode,
    path: string,
    family: Family | undefined,
    underlay: Cidr | undefined,
    underlayText: string,
    hostAddresses: readonly HostAddress[] = [],
): Cidr | undefined {
    const v = n.kind === "scalar" ? n.value : got(n);
    if (!r.check(n.pos, path, checkCidr(path, v, family))) {
        return undefined;
    }
    const c = parseCidr(v, true)!;
    const shown = formatCidr(c);
    if (c.length === 0) {
        r.add(n.pos, path, `${shown} is a default route; sending everything into the tunnel would cut the SSH path to the hosts`);
        return undefined;
    }
    if (underlay && cidrsOverlap(underlay, c)) {
        r.add(n.pos, path, `${shown} overlaps the underlay network ${underlayText}; routing it into the tunnel would cut the SSH path to the VMs`);
        return undefined;
    }
    const covered = hostAddresses.find((h) => cidrContains(c, h.ip));
    if (covered) {
        r.add(n.pos, path, `${shown} contains ${formatIp(covered.ip)}, ${covered.what}; routing it into the tunnel would cut the SSH path or loop the tunnel's own packets`);
        return undefined;
    }
    return c;
}

/** The defaults section: a mapping of tunnel values (not of the keys that are per tunnel). */
export function readDefaults(r: Report, root: YMap): Defaults {
    const defaults: Defaults = {};
    const e = root.entries.get("defaults");
    if (!e) {
        return defaults;
    }
    if (e.value.kind !== "map") {
        r.add(e.value.pos, "defaults", `must be a mapping of tunnel values, like {port: 5555} (got ${got(e.value)})`);
        return defaults;
    }
    const map = e.value;
    checkKeys(r, map, "defaults", "defaults", VALUE_KEYS, (key) =>
        OWN_KEYS.includes(key) ? `${key} is set per tunnel and cannot have a default; defaults may set ${VALUE_KEYS.join(", ")}` : undefined,
    );
    const set = <K extends ValueKey>(k: K, d: YEntry) => {
        const res = READ[k](d.value, `defaults.${k}`);
        if ("error" in res) {
            r.add(d.value.pos, `defaults.${k}`, res.error);
        } else {
            (defaults as Record<K, { value: TunnelValues[K]; line: number }>)[k] = { value: res.value, line: r.line(d.value.pos) };
        }
    };
    for (const k of VALUE_KEYS) {
        const d = map.entries.get(k);
        if (d) {
            set(k, d);
        }
    }
    return defaults;
}
