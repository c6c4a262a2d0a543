import * as pulumi from "@pulumi/pulumi";

/**
 * Pure checks for everything that ends up in an `ip` command. Each returns an error message
 * naming the argument (a config key or a component argument) or `undefined` when valid, so
 * callers can report every problem at once before any resource is declared.
 */

/** Linux IFNAMSIZ is 16 including the terminating NUL. */
export const MAX_IFNAME = 15;

/**
 * Error raised for invalid input; the message lists every problem found. A RunError, so Pulumi
 * prints just the message (no stack trace) and stops before registering anything further.
 */
export class FouInputError extends pulumi.RunError {
    constructor(readonly problems: string[]) {
        super(problems.length === 1 ? problems[0] : "invalid input:\n  - " + problems.join("\n  - "));
        this.name = "FouInputError";
    }
}

/** Throws a {@link FouInputError} when any check failed. */
export function throwIfInvalid(problems: (string | undefined)[]): void {
    const found = problems.filter((p): p is string => p !== undefined);
    if (found.length > 0) {
        throw new FouInputError(found);
    }
}

/** An interface name the kernel accepts and `ip` cannot misread. */
export function checkIfname(key: string, value: unknown): string | undefined {
    if (typeof value !== "string" || value.length === 0) {
        return `${key} must be a non-empty interface name`;
    }
    if (value.length > MAX_IFNAME) {
        return `${key} "${value}" is ${value.length} characters; interface names have at most ${MAX_IFNAME}`;
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(value) || value === "." || value === "..") {
        return `${key} "${value}" may only contain letters, digits, '_', '.', '-' and must start with a letter or digit`;
    }
    return undefined;
}

/** A host name used to derive interface names (`fto<peer>`). */
export function checkHostName(key: string, value: unknown): string | undefined {
    if (typeof value !== "string" || !/^[a-z][a-z0-9-]{0,11}$/.test(value)) {
        return `${key} must be 1-12 characters of a-z, 0-9 and '-', starting with a letter (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/** Parses a dotted-quad IPv4 address strictly (no leading zeros, no shorthand). */
export function parseIpv4(value: string): number | undefined {
    const parts = value.split(".");
    if (parts.length !== 4) {
        return undefined;
    }
    let n = 0;
    for (const p of parts) {
        if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) {
            return undefined;
        }
        n = n * 256 + Number(p);
    }
    return n;
}

export function formatIpv4(n: number): string {
    return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** A unicast IPv4 address usable as a tunnel endpoint or GWIP. */
export function checkIpv4(key: string, value: unknown): string | undefined {
    const n = typeof value === "string" ? parseIpv4(value) : undefined;
    if (n === undefined) {
        return `${key} must be an IPv4 address like 10.10.10.1 (got ${JSON.stringify(value)})`;
    }
    const first = Math.floor(n / 2 ** 24);
    if (n === 0 || first === 127 || first >= 224) {
        return `${key} ${value} is not a unicast host address`;
    }
    return undefined;
}

export interface Ipv4Prefix {
    readonly network: number;
    readonly length: number;
}

/** Parses `a.b.c.d/len` (a bare address is a /32). */
export function parsePrefix(value: string): Ipv4Prefix | undefined {
    const [addr, len, ...rest] = value.split("/");
    if (rest.length > 0) {
        return undefined;
    }
    const n = parseIpv4(addr);
    const length = len === undefined ? 32 : /^(0|[1-9][0-9]?)$/.test(len) ? Number(len) : NaN;
    if (n === undefined || !(length >= 0 && length <= 32)) {
        return undefined;
    }
    return { network: n, length };
}

/** A network prefix with no host bits set, e.g. 203.0.113.0/24. */
export function checkPrefix(key: string, value: unknown): string | undefined {
    const p = typeof value === "string" ? parsePrefix(value) : undefined;
    if (p === undefined) {
        return `${key} must be an IPv4 prefix like 203.0.113.0/24 (got ${JSON.stringify(value)})`;
    }
    const size = 2 ** (32 - p.length);
    if (p.network % size !== 0) {
        return `${key} ${value} has host bits set; did you mean ${formatIpv4(p.network - (p.network % size))}/${p.length}?`;
    }
    return undefined;
}

/** True when the address lies inside the prefix. */
export function prefixContains(prefix: Ipv4Prefix, address: number): boolean {
    const size = 2 ** (32 - prefix.length);
    return address - (address % size) === prefix.network - (prefix.network % size);
}

/** A UDP port for the FOU receive socket. */
export function checkPort(key: string, value: unknown): string | undefined {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
        return `${key} must be a UDP port number from 1 to 65535 (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/** An integer in an inclusive range. */
export function checkInt(key: string, value: unknown, min: number, max: number): string | undefined {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
        return `${key} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/**
 * A boolean config value; `pulumi config set` stores "true"/"false" as strings. An invalid value
 * is recorded in `problems` (naming `key`) and the default returned, so parsing can go on.
 */
export function parseBool(v: unknown, dflt: boolean, key: string, problems: (string | undefined)[]): boolean {
    if (v === undefined) {
        return dflt;
    }
    if (v === true || v === "true") {
        return true;
    }
    if (v === false || v === "false") {
        return false;
    }
    problems.push(`${key} must be true or false (got ${JSON.stringify(v)})`);
    return dflt;
}
