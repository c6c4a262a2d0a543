import { readFileSync } from "fs";
import { Cidr, parseCidr } from "../lib/inet";
import { FouInputError } from "../lib/validate";
import { build } from "./build";
import { Claims, checkRoutesAvoidGwips, checkSports } from "./checks";
import { DEFAULT_UNDERLAY } from "./defaults";
import { allocateGwips, readPools } from "./gwips";
import { readHosts } from "./hosts";
import type { Topology, TopologyOptions } from "./model";
import { collectPorts } from "./ports";
import { context } from "./records";
import { TOP_KEYS, checkKeys, readBool, readDefaults } from "./schema";
import type { Report, YMap } from "./yaml";
import { readTunnels } from "./tunnels";
import { readTree } from "./yaml";

/**
 * Parses and validates a topology file (docs/topology.md), the steps in order: the YAML tree
 * with positions, each section read by the schema (hosts, pools, defaults, tunnels, claiming
 * what must be unique as they go), GWIP allocation, the checks that need every GWIP and port,
 * then the model. Throws one FouInputError (lib/validate.ts) listing EVERY problem found, each
 * as `<source>:<line>:<col>: <path>: <rule>`, in file order.
 */
export function parseTopology(text: string, source: string, options: TopologyOptions): Topology {
    const underlay = underlayOf(options);
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

/** Reads the file then parseTopology(text, path as given, options); an unreadable file is a FouInputError naming the path and the reason. */
export function loadTopology(path: string, options: TopologyOptions): Topology {
    let text: string;
    try {
        text = readFileSync(path, "utf8");
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const reason =
            code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (e as Error).message;
        throw new FouInputError([`${path}: cannot read the topology file: ${reason}`]);
    }
    return parseTopology(text, path, options);
}
