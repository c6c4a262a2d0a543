import { isMap, isScalar, parseDocument } from "yaml";
import { Cidr, parseCidr } from "../lib/inet";
import { FouInputError } from "../lib/validate";
import { build } from "./build";
import { Claims, checkRoutesAvoidGwips, checkSports } from "./checks";
import { DEFAULT_UNDERLAY } from "./defaults";
import { readTopologyFile } from "./file";
import { allocateGwips, readPools } from "./gwips";
import { readHosts } from "./hosts";
import type { Topology, TopologyOptions } from "./model";
import { collectPorts } from "./ports";
import { context } from "./records";
import { TOP_KEYS, checkKeys, readBool, readDefaults } from "./schema";
import type { Report, YMap } from "./yaml";
import { readTunnels } from "./tunnels";
import { readTree } from "./yaml";

/** Problems listed in full; more would bury the first ones (a file of 40,000 bad tunnels gives 80,000). */
const MAX_SHOWN = 50;

/**
 * Parses and validates a topology file (docs/topology.md), the steps in order: the YAML tree
 * with positions, each section read by the schema (hosts, pools, defaults, tunnels, claiming
 * what must be unique as they go), GWIP allocation, the checks that need every GWIP and port,
 * then the model. Throws one FouInputError (lib/validate.ts) listing every problem found, each
 * as `<source>:<line>:<col>: <path>: <rule>`, in file order: the first {@link MAX_SHOWN}, then
 * one line with how many more.
 */
export function parseTopology(text: string, source: string, options: TopologyOptions): Topology {
    const underlay = underlayOf(options);
    try {
        return parseChecked(text, source, options, underlay);
    } catch (e) {
        throw e instanceof FouInputError && e.problems.length > MAX_SHOWN ? new FouInputError(shown(e.problems)) : e;
    }
}

/** The first {@link MAX_SHOWN} problems, then one line with how many more there are. */
function shown(problems: string[]): string[] {
    return [...problems.slice(0, MAX_SHOWN), `… and ${problems.length - MAX_SHOWN} more`];
}

function parseChecked(text: string, source: string, options: TopologyOptions, underlay: Cidr | undefined): Topology {
    const { r, root } = readTree(text, source);
    const cx = context(r, root, underlay, options.kind);
    checkKeys(r, root, "", "top-level", TOP_KEYS);
    const hosts = readHosts(cx);
    const pools = readPools(cx);
    const defaults = readDefaults(r, root);
    const firewall = readFirewall(r, root);
    const claims = new Claims(r);
    const tunnels = readTunnels(cx, hosts, defaults, claims);
    allocateGwips(cx, tunnels, pools, claims);
    checkRoutesAvoidGwips(r, tunnels);
    const ports = collectPorts(r, tunnels);
    checkSports(r, tunnels, ports);
    if (r.count > 0) {
        throw new FouInputError(r.problems());
    }
    return { ...build(source, hosts.list, tunnels, ports), firewall };
}

/** `firewall: false` opts out of the nftables rules that close the receive ports to strangers. */
function readFirewall(r: Report, root: YMap): boolean {
    const e = root.entries.get("firewall");
    if (e === undefined) {
        return true;
    }
    const v = readBool(e.value);
    if ("error" in v) {
        r.add(e.value.pos, "firewall", v.error);
        return true;
    }
    return v.value;
}

/** The local bridge network of the options (default the guide's); undefined on aws and ssh. Bad options are a programming error. */
function underlayOf(options: TopologyOptions): Cidr | undefined {
    if (options.kind !== "local" && options.kind !== "aws" && options.kind !== "ssh") {
        throw new TypeError(`parseTopology: kind must be "local", "aws" or "ssh" (got ${JSON.stringify(options.kind)})`);
    }
    if (options.kind !== "local") {
        return undefined;
    }
    const u = options.underlay ?? DEFAULT_UNDERLAY;
    const underlay = parseCidr(u);
    if (!underlay || underlay.family !== 4 || underlay.length < 8 || underlay.length > 30) {
        throw new TypeError(`parseTopology: underlay must be an IPv4 address with its length, like ${DEFAULT_UNDERLAY} (got ${JSON.stringify(u)})`);
    }
    return underlay;
}

/**
 * Reads the file (topology/file.ts: a regular file of at most 1 MiB) then parseTopology(text,
 * path as given, options). The path may name any file the program can read, and messages go to
 * the console and CI logs: a file that is not a topology at all is refused in one line that
 * quotes none of it, where parseTopology would quote each of its keys as unknown.
 */
export function loadTopology(path: string, options: TopologyOptions): Topology {
    const text = readTopologyFile(path);
    try {
        return parseTopology(text, path, options);
    } catch (e) {
        const not = e instanceof FouInputError ? notTopology(text) : undefined;
        if (not !== undefined) {
            throw new FouInputError([`${path}: not a topology file: ${not}; a topology file is a YAML mapping with the keys hosts and tunnels (docs/topology.md)`]);
        }
        throw e;
    }
}

/**
 * Why the text is not a topology, in words that quote none of it; undefined when its top level
 * is a mapping with at least one topology key (then its problems are worth listing, YAML syntax
 * errors included). Called only when parsing failed, so a good file is parsed once.
 */
function notTopology(text: string): string | undefined {
    const doc = parseDocument(text, { uniqueKeys: false });
    const root = doc.contents;
    if (isMap(root) && root.items.some((p) => isScalar(p.key) && TOP_KEYS.includes(p.key.value as string))) {
        return undefined;
    }
    if (doc.errors.length > 0) {
        return "it does not parse as YAML";
    }
    if (root === null) {
        return "it is empty";
    }
    if (isMap(root)) {
        return `none of its ${root.items.length} top-level keys is a topology key (${TOP_KEYS.join(", ")})`;
    }
    return `its top level is ${isScalar(root) ? "a single value" : "a list"}, not a mapping`;
}
