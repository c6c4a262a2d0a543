/**
 * Generic checks of input values (ports, integers, interface and host names, booleans) and the
 * error that lists every problem. Each check returns an error message naming the argument (a
 * config key, a component argument, a topology path) or `undefined` when valid, so callers can
 * report every problem at once before any resource is declared. Addresses are in inet.ts.
 * A leaf: it loads no Pulumi SDK, so the topology parser that uses it stays free of one.
 */

/** Linux IFNAMSIZ is 16 including the terminating NUL. */
export const MAX_IFNAME = 15;

/** Host names are short enough that `fto<host>` (lib/vocabulary.ts) fits in {@link MAX_IFNAME}. */
export const MAX_HOST_NAME = 12;

/**
 * Error raised for invalid input; the message lists every problem found. Pulumi treats it as a
 * RunError (it prints just the message, no stack trace, and stops before registering anything
 * further): the SDK recognises a RunError by its `__pulumiRunError` mark, not by its class, so
 * this module needs no SDK.
 */
export class FouInputError extends Error {
    /** The mark `pulumi.RunError.isInstance` reads. */
    readonly __pulumiRunError = true;

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

const HOST_NAME = new RegExp(`^[a-z][a-z0-9-]{0,${MAX_HOST_NAME - 1}}$`);

/** A host name used to derive interface names (`fto<peer>`). */
export function checkHostName(key: string, value: unknown): string | undefined {
    if (typeof value !== "string" || !HOST_NAME.test(value)) {
        return `${key} must be 1-${MAX_HOST_NAME} characters of a-z, 0-9 and '-', starting with a letter (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/** True for an integer from `min` to `max`. */
export function isIntIn(value: unknown, min: number, max: number): value is number {
    return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

/** The words of the port rule, for a caller that puts its own name (and its way of showing the value) before them. */
export function portProblem(value: unknown, shown = JSON.stringify(value)): string | undefined {
    return isIntIn(value, 1, 65535) ? undefined : `must be a UDP port number from 1 to 65535 (got ${shown})`;
}

/** The words of the range rule, as {@link portProblem}. */
export function intProblem(value: unknown, min: number, max: number, shown = JSON.stringify(value)): string | undefined {
    return isIntIn(value, min, max) ? undefined : `must be an integer from ${min} to ${max} (got ${shown})`;
}

/** `<key> <problem>`, or undefined when there is none. */
function named(key: string, problem: string | undefined): string | undefined {
    return problem === undefined ? undefined : `${key} ${problem}`;
}

/** A UDP port for the FOU receive socket. */
export function checkPort(key: string, value: unknown): string | undefined {
    return named(key, portProblem(value));
}

/** An integer in an inclusive range. */
export function checkInt(key: string, value: unknown, min: number, max: number): string | undefined {
    return named(key, intProblem(value, min, max));
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
