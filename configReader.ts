/**
 * What every parser of the stack's keys works with: the lookup, how messages name a key, the one
 * list of problems they all add to (thrown together, so a user sees every bad key at once), and
 * the two values that decide which keys apply. Made once by parseSettings and passed alone.
 */
export interface ConfigReader {
    /** A key's value: JSON when it parses, else the string as set; undefined when unset. */
    readonly get: (key: string) => unknown;
    /** A key as messages name it: `fou-tunnel:port`. */
    readonly key: (k: string) => string;
    /** Every problem found so far; `undefined` entries (a check that passed) are skipped when thrown. */
    readonly problems: (string | undefined)[];
    /** The `hosts` key as set (default "local"), unchecked: parseSettings reports a bad one. */
    readonly hosts: unknown;
    /** The stack's namespace, which prefixes keys in messages and names the guide's source. */
    readonly ns: string;
}

/** A reader over `get`, with no problems yet. */
export function configReader(get: (key: string) => unknown, ns: string): ConfigReader {
    return { get, key: (k) => `${ns}:${k}`, problems: [], hosts: get("hosts") ?? "local", ns };
}
