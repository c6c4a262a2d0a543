import { readFileSync } from "fs";
import * as path from "path";

/**
 * The fixed parts of the host scripts, kept as shell source in `components/sh/` (shellcheck
 * reads them as they are) and read once, at load. What reaches a host is the file without its
 * comments and blank lines: a step's program is stored in the stack's state with every command,
 * and the comments are for the reader of the source.
 */
export type HostLibraryFile =
    | "undo.sh"
    | "object.sh"
    | "kernel-prep.sh"
    | "ip-forward.sh"
    | "reach.sh"
    | "aws-poll.sh"
    | "tunnel-check.sh"
    | "kernel-fou.sh"
    | "kernel-upgrade.sh"
    | "kernel-verify.sh";

const loaded = new Map<HostLibraryFile, string>();

/** Where the library's files are: beside this module, in the repository and in the package. */
export const HOST_LIBRARY_DIR = path.join(__dirname, "sh");

/**
 * FILE's shell text as hosts get it: comment-only and blank lines left out, lines kept whole
 * (so a library file holds no multi-line string with a blank or `#` line in it). shellcheck's
 * `disable=` directives stay: the unit tests lint every step's whole program too.
 */
export function hostLibrary(file: HostLibraryFile): string {
    let text = loaded.get(file);
    if (text === undefined) {
        text = readFileSync(path.join(HOST_LIBRARY_DIR, file), "utf8")
            .split("\n")
            .filter((line) => line.trim() !== "" && (!/^\s*#/.test(line) || /^\s*# shellcheck disable=/.test(line)))
            .join("\n");
        loaded.set(file, text);
    }
    return text;
}

/**
 * Some of FILE's functions, as hosts get them, in the file's order: a step carries only the ones
 * it calls (a plain object has no owner to check). A function is a `name() {` line at the start
 * of a line through the next `}` line there; a name the file lacks is an error.
 */
export function hostFunctions(file: HostLibraryFile, names: readonly string[]): string {
    const found = new Map<string, string>();
    let name: string | undefined;
    let body: string[] = [];
    for (const line of hostLibrary(file).split("\n")) {
        const start = /^([A-Za-z_][A-Za-z0-9_]*)\(\) \{$/.exec(line);
        if (name === undefined && start) [name, body] = [start[1], []];
        if (name !== undefined) body.push(line);
        if (name !== undefined && line === "}") {
            found.set(name, body.join("\n"));
            name = undefined;
        }
    }
    const missing = names.filter((n) => !found.has(n));
    if (missing.length > 0) throw new Error(`${file} has no function ${missing.join(", ")}`);
    return [...found].filter(([n]) => names.includes(n)).map(([, text]) => text).join("\n");
}
