import { isIPv4, isIPv6 } from "net";

/**
 * The project's one address library: IPv4 and IPv6 addresses and prefixes as bigints (parse,
 * format, contain, overlap) and the checks built on them. Each check returns an error message
 * naming its key (a config key, a component argument, a topology path) or `undefined` when the
 * value is valid, so callers can report every problem at once before any resource is declared.
 */

export type Family = 4 | 6;

export interface Ip {
    readonly family: Family;
    readonly value: bigint;
}

export interface Cidr {
    readonly family: Family;
    /** The address as written (host bits may be set: 198.51.100.1/24). */
    readonly address: bigint;
    readonly length: number;
    /** The address with host bits cleared. */
    readonly network: bigint;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** Parses an IPv4 dotted quad (no leading zeros) or an IPv6 address (any RFC 4291 form). */
export function parseIp(text: unknown): Ip | undefined {
    if (typeof text !== "string") {
        return undefined;
    }
    if (isIPv4(text)) {
        if (text.split(".").some((p) => p.length > 1 && p.startsWith("0"))) {
            return undefined;
        }
        return { family: 4, value: text.split(".").reduce((n, p) => (n << 8n) | BigInt(p), 0n) };
    }
    if (isIPv6(text) && !text.includes("%")) {
        let groups: string[];
        let t = text;
        const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
        if (v4) {
            const n = parseIp(v4[1]);
            if (!n) return undefined;
            t = t.slice(0, -v4[1].length) + `${(n.value >> 16n).toString(16)}:${(n.value & 0xffffn).toString(16)}`;
        }
        const [head, tail] = t.split("::");
        const h = head ? head.split(":") : [];
        const tl = tail === undefined ? [] : tail ? tail.split(":") : [];
        groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill("0"), ...tl];
        return { family: 6, value: groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n) };
    }
    return undefined;
}

/** The canonical text of an address (IPv6 compressed per RFC 5952). */
export function formatIp(ip: Ip): string {
    if (ip.family === 4) {
        return [24n, 16n, 8n, 0n].map((s) => ((ip.value >> s) & 0xffn).toString()).join(".");
    }
    const groups = [...Array(8).keys()].map((i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
    // Longest run of two or more zero groups becomes "::".
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8; ) {
        let j = i;
        while (j < 8 && groups[j] === 0) j++;
        if (j - i > bestLen) {
            best = i;
            bestLen = j - i;
        }
        i = j === i ? i + 1 : j;
    }
    const hex = groups.map((g) => g.toString(16));
    if (best < 0) {
        return hex.join(":");
    }
    return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** Parses `address/length`; a bare address is a host prefix when `bareIsHost`. */
export function parseCidr(text: unknown, bareIsHost = false): Cidr | undefined {
    if (typeof text !== "string") {
        return undefined;
    }
    const slash = text.indexOf("/");
    const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
    if (!addr) {
        return undefined;
    }
    let length = BITS[addr.family];
    if (slash >= 0) {
        const l = text.slice(slash + 1);
        if (!/^(0|[1-9]\d{0,2})$/.test(l) || Number(l) > BITS[addr.family]) {
            return undefined;
        }
        length = Number(l);
    } else if (!bareIsHost) {
        return undefined;
    }
    return { family: addr.family, address: addr.value, length, network: addr.value & mask(addr.family, length) };
}

export function formatCidr(c: Cidr): string {
    return `${formatIp({ family: c.family, value: c.network })}/${c.length}`;
}

function mask(family: Family, length: number): bigint {
    const bits = BigInt(BITS[family]);
    return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(length))) - 1n);
}

/** Whether `ip` lies inside `cidr` (same family). */
export function cidrContains(cidr: Cidr, ip: Ip): boolean {
    return cidr.family === ip.family && (ip.value & mask(cidr.family, cidr.length)) === cidr.network;
}

/** Whether two prefixes share an address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
    if (a.family !== b.family) {
        return false;
    }
    const l = Math.min(a.length, b.length);
    return (a.network & mask(a.family, l)) === (b.network & mask(b.family, l));
}

/** An address of the given family (either when omitted); error text names `key`. */
export function checkIp(key: string, value: unknown, family?: Family): string | undefined {
    const ip = parseIp(value);
    if (!ip || (family !== undefined && ip.family !== family)) {
        const what = family === 4 ? "an IPv4 address like 10.10.10.1" : family === 6 ? "an IPv6 address like fd00:f0::1" : "an IPv4 or IPv6 address";
        return `${key} must be ${what} (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/** A prefix `address/length` (a bare address counts as a host route) of the given family. */
export function checkCidr(key: string, value: unknown, family?: Family): string | undefined {
    const c = parseCidr(value, true);
    if (!c || (family !== undefined && c.family !== family)) {
        const what = family === 4 ? "an IPv4 prefix like 192.168.2.0/24" : family === 6 ? "an IPv6 prefix like fd00:2::/64" : "a prefix like 192.168.2.0/24";
        return `${key} must be ${what} (got ${JSON.stringify(value)})`;
    }
    if (c.address !== c.network) {
        return `${key} ${String(value)} has host bits set; the network is ${formatCidr(c)}`;
    }
    return undefined;
}

/**
 * An address in the one form `ip` and tcpdump print it (IPv6 compressed, lower case), so a
 * host's listing can be matched as text; anything that is no address comes back as given.
 */
export function canonicalIp(text: string): string {
    const ip = parseIp(text);
    return ip ? formatIp(ip) : text;
}

/** `10.10.10.2` → `10.10.10.2/32`, `fd00::2` → `fd00::2/128`; prefixes are written canonically. */
export function hostPrefix(value: string): string {
    const c = parseCidr(value, true);
    return c ? formatCidr(c) : value;
}

/** The address family of a valid address or prefix. */
export function familyOf(value: string): Family | undefined {
    return parseCidr(value, true)?.family;
}

/** The last address of a prefix (for IPv4, its broadcast address). */
export function lastAddress(c: Cidr): bigint {
    return c.network | ((1n << BigInt(BITS[c.family] - c.length)) - 1n);
}

/** A unicast IPv4 address usable as a tunnel endpoint (not 0.0.0.0, 127/8, 224/4 or 240/4). */
export function checkIpv4(key: string, value: unknown): string | undefined {
    const ip = parseIp(value);
    if (ip?.family !== 4) {
        return `${key} must be an IPv4 address like 10.10.10.1 (got ${JSON.stringify(value)})`;
    }
    const first = ip.value >> 24n;
    if (ip.value === 0n || first === 127n || first >= 224n) {
        return `${key} ${String(value)} is not a unicast host address`;
    }
    return undefined;
}

/**
 * A tunnel's underlay address: a unicast IPv4 address ({@link checkIpv4}) or a unicast IPv6
 * address that needs no zone (not link-local) and is not an IPv4 address in disguise
 * (::ffff:0:0/96); of `family` when given.
 */
export function checkUnderlay(key: string, value: unknown, family?: Family): string | undefined {
    const ip = parseIp(value);
    if (!ip || (family !== undefined && ip.family !== family)) {
        const what = family === 4 ? "an IPv4 address like 198.51.100.1" : family === 6 ? "an IPv6 address like 2001:db8::1" : "an IPv4 or IPv6 address like 198.51.100.1 or 2001:db8::1";
        return `${key} must be ${what} (got ${JSON.stringify(value)})`;
    }
    if (ip.family === 4) {
        return checkIpv4(key, value);
    }
    const special = notUnicast(ip) ?? (cidrContains(MAPPED, ip) ? "in ::ffff:0:0/96 (an IPv4-mapped address: write the IPv4 address)" : undefined);
    return special === undefined ? undefined : `${key} ${String(value)} is ${special}; a tunnel's underlay needs a unicast address`;
}

/** An IPv4 network prefix with no host bits set, e.g. 203.0.113.0/24 (a bare address is a /32). */
export function checkPrefix(key: string, value: unknown): string | undefined {
    const c = parseCidr(value, true);
    if (c?.family !== 4) {
        return `${key} must be an IPv4 prefix like 203.0.113.0/24 (got ${JSON.stringify(value)})`;
    }
    if (c.address !== c.network) {
        return `${key} ${String(value)} has host bits set; did you mean ${formatCidr(c)}?`;
    }
    return undefined;
}

/** Addresses that are not unicast host addresses, per family, with what they are. */
const NOT_UNICAST: Record<Family, [Cidr, string][]> = {
    4: [
        [builtin("0.0.0.0/8"), "in 0.0.0.0/8 (this network)"],
        [builtin("127.0.0.0/8"), "in 127.0.0.0/8 (loopback)"],
        [builtin("224.0.0.0/4"), "in 224.0.0.0/4 (multicast)"],
        [builtin("240.0.0.0/4"), "in 240.0.0.0/4 (reserved, broadcast)"],
    ],
    6: [
        [builtin("::/128"), "the unspecified address ::"],
        [builtin("::1/128"), "the loopback address ::1"],
        [builtin("fe80::/10"), "in fe80::/10 (link-local)"],
        [builtin("ff00::/8"), "in ff00::/8 (multicast)"],
    ],
};

/** What an address is when it is not unicast ("in 127.0.0.0/8 (loopback)"), else undefined. */
export function notUnicast(ip: Ip): string | undefined {
    return NOT_UNICAST[ip.family].find(([c]) => cidrContains(c, ip))?.[1];
}

/** What a prefix overlaps that is not unicast, else undefined. */
export function overlapsNotUnicast(c: Cidr): string | undefined {
    return NOT_UNICAST[c.family].find(([s]) => cidrsOverlap(s, c))?.[1];
}

const MAPPED = builtin("::ffff:0:0/96");

/** A prefix written in this file; a typo in one is a programming error. */
function builtin(text: string): Cidr {
    const c = parseCidr(text);
    if (!c) {
        throw new Error(`bad built-in prefix ${text}`);
    }
    return c;
}
