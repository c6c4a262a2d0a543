import * as pulumi from "@pulumi/pulumi";

/**
 * Generic checks of input values (ports, integers, interface and host names, booleans) and the
 * error that lists every problem. Each check returns an error message naming the argument (a
 * config key, a component argument, a topology path) or `undefined` when valid, so callers can
 * report every problem at once before any resource is declared. Addresses are in inet.ts.
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
