import { Document, LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from "yaml";
import { FouInputError } from "../lib/validate";

/**
 * Step 1 of reading a topology file: the YAML tree, reduced to what a topology uses (mappings,
 * lists, scalars), with each node's offset, and the Report that turns an offset into
 * `<file>:<line>:<col>: <path>: <rule>`. Aliases are expanded here, bounded in depth and size.
 */

export interface YMap {
    readonly kind: "map";
    readonly pos: number;
    readonly entries: Map<string, YEntry>;
}
export interface YSeq {
    readonly kind: "seq";
    readonly pos: number;
    readonly items: YNode[];
}
export interface YScalar {
    readonly kind: "scalar";
    readonly pos: number;
    /** string, number, boolean or null (YAML 1.2 core schema). */
    readonly value: unknown;
}
export type YNode = YMap | YSeq | YScalar;
export interface YEntry {
    readonly keyPos: number;
    readonly value: YNode;
}

/** Problems found so far, each placed at a node; listed in file order. */
export class Report {
    private readonly found: { pos: number; n: number; text: string }[] = [];
    constructor(
        readonly source: string,
        private readonly lc: LineCounter,
    ) {}
    line(pos: number): number {
        return this.lc.linePos(pos).line;
    }
    add(pos: number, path: string, rule: string): void {
        const { line, col } = this.lc.linePos(pos);
        this.found.push({ pos, n: this.found.length, text: `${this.source}:${line}:${col}: ${path}: ${rule}` });
    }
    /** Adds the message of a lib/ check (which starts with the key, here `path`). */
    check(pos: number, path: string, message: string | undefined): boolean {
        if (message === undefined) {
            return true;
        }
        this.add(pos, path, message.startsWith(path + " ") ? message.slice(path.length + 1) : message);
        return false;
    }
    /** YAML nodes converted so far, aliases expanded: bounds what a file of nested aliases can cost. */
    nodes = 0;
    get count(): number {
        return this.found.length;
    }
    problems(): string[] {
        return [...this.found].sort((a, b) => a.pos - b.pos || a.n - b.n).map((p) => p.text);
    }
}

/**
 * Parses the text into its root mapping and the Report that the later steps add to. A file
 * that does not parse, or whose top level is not a mapping, ends here: checks on a broken tree
 * would only add noise.
 */
export function readTree(text: string, source: string): { r: Report; root: YMap } {
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
    const r = new Report(source, lc);
    for (const e of doc.errors) {
        r.add(e.pos[0], "YAML syntax", e.message);
    }
    if (doc.errors.length > 0) {
        throw new FouInputError(r.problems());
    }
    for (const w of doc.warnings) {
        const why = w.code === "TAG_RESOLVE_FAILED" ? "; a topology file uses plain YAML without tags" : "";
        r.add(w.pos[0], "YAML", `${w.message}${why}`);
    }
    const root = doc.contents ? convert(doc, doc.contents, 0, "", r, 0) : undefined;
    if (!root || root.kind !== "map") {
        r.add(root?.pos ?? 0, "top level", `must be a mapping with the keys hosts and tunnels (got ${root ? got(root) : "an empty file"})`);
        throw new FouInputError(r.problems());
    }
    return { r, root };
}

const MAX_DEPTH = 32;
const MAX_NODES = 100_000;

function convert(doc: Document, node: unknown, fallback: number, path: string, r: Report, depth: number, at?: number): YNode {
    const range = (n: unknown): number | undefined => (n as { range?: [number, number, number] } | null)?.range?.[0];
    const pos = at ?? range(node) ?? fallback;
    if (depth > MAX_DEPTH) {
        r.add(pos, path, `nested more than ${MAX_DEPTH} levels deep (a recursive alias?)`);
        return { kind: "scalar", pos, value: null };
    }
    if (++r.nodes === MAX_NODES) {
        r.add(pos, path, `the file expands to more than ${MAX_NODES} values (aliases of aliases?); a topology is far smaller`);
    }
    if (r.nodes >= MAX_NODES) {
        return { kind: "scalar", pos, value: null };
    }
    if (isAlias(node)) {
        const target = node.resolve(doc);
        if (target === undefined) {
            r.add(pos, path, `alias *${node.source} refers to no anchor`);
            return { kind: "scalar", pos, value: null };
        }
        // Messages about an aliased value point at the alias, where it is used.
        return convert(doc, target, pos, path, r, depth + 1, pos);
    }
    if (isMap(node)) {
        const entries = new Map<string, YEntry>();
        for (const pair of node.items) {
            const keyPos = range(pair.key) ?? pos;
            if (!isScalar(pair.key) || typeof pair.key.value !== "string") {
                const shown = isScalar(pair.key) ? JSON.stringify(pair.key.value) : "a collection";
                r.add(keyPos, path || "top level", `keys must be names like ${path ? "port" : "hosts"} (got ${shown})`);
                continue;
            }
            const key = pair.key.value;
            const p = child(path, key);
            const first = entries.get(key);
            if (first) {
                r.add(keyPos, p, `duplicate key ${key}: already set at line ${r.line(first.keyPos)}; a key may appear once`);
                continue;
            }
            entries.set(key, { keyPos, value: convert(doc, pair.value, keyPos, p, r, depth + 1) });
        }
        return { kind: "map", pos, entries };
    }
    if (isSeq(node)) {
        return { kind: "seq", pos, items: node.items.map((n, i) => convert(doc, n, pos, `${path}[${i}]`, r, depth + 1)) };
    }
    return { kind: "scalar", pos, value: isScalar(node) ? node.value : null };
}

export function child(path: string, key: string): string {
    const k = /^[\w-]+$/.test(key) ? key : JSON.stringify(key);
    return path ? `${path}.${k}` : k;
}

/** A node as shown after "got": 70000, "yes", a list, a mapping, nothing. */
export function got(n: YNode): string {
    if (n.kind === "map") {
        return "a mapping";
    }
    if (n.kind === "seq") {
        return `a list of ${n.items.length}`;
    }
    return n.value === null || n.value === undefined ? "nothing" : JSON.stringify(n.value);
}

export function str(n: YNode): string | undefined {
    return n.kind === "scalar" && typeof n.value === "string" ? n.value : undefined;
}
