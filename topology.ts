import { readFileSync } from "fs";
import { Document, LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from "yaml";
import { Cidr, Family, Ip, cidrContains, cidrsOverlap, checkCidr, formatCidr, formatIp, notUnicast, overlapsNotUnicast, parseCidr, parseIp } from "./lib/inet";
import { FouInputError, checkHostName, checkIfname, checkInt, checkPort } from "./lib/validate";

/**
 * The topology file: which hosts exist and which FOU/GUE tunnels join them (docs/topology.md).
 * Pure: parses and validates the YAML and derives what the components need (GWIPs allocated from
 * pools, interface names, the receive ports each host opens), or throws one FouInputError listing
 * every problem, each as `<source>:<line>:<col>: <path>: <rule>`.
 */

export type TunnelProtocol = "ipip" | "sit" | "gre";
export type Encap = "fou" | "gue";

export interface TopologyHost {
    readonly name: string;
    /** local stacks: the VM's underlay address on the bridge (defaulted, see below). undefined on aws. */
    readonly address?: string;
    /** local stacks only: false boots the VM with fou unusable (tests of the kernel check). Default true. */
    readonly fou: boolean;
}

export interface TunnelEndSpec {
    readonly host: string;
    /** GWIP: IPv4 for ipip/gre, IPv6 for sit; canonical text (inet.ts formatIp). */
    readonly gwip: string;
    /** Tunnel interface on this host; default `fto<peer name>` (the guide's ftok2 on k1). */
    readonly ifname: string;
    /** Prefixes this host routes into the tunnel (they live behind the peer), canonical (formatCidr). */
    readonly routes: string[];
}

export interface TunnelSpec {
    readonly name: string;
    readonly protocol: TunnelProtocol;
    /** 4 for ipip, 41 for sit, 47 for gre. */
    readonly ipproto: 4 | 41 | 47;
    /** Inner address family: 6 for sit, else 4. */
    readonly family: 4 | 6;
    readonly encap: Encap;
    /** UDP port on both hosts (receive port and encap-dport), the guide's 5555. */
    readonly port: number;
    /** encap-sport: "auto" or a fixed port. */
    readonly sport: number | "auto";
    /** encap-csum (UDP checksums) when true. */
    readonly csum: boolean;
    /** Tunnel MTU; undefined = the kernel's default. */
    readonly mtu?: number;
    readonly ttl: number;
    /** Write a boot-time unit on both hosts so the tunnel survives a reboot. */
    readonly persist: boolean;
    readonly ends: readonly [TunnelEndSpec, TunnelEndSpec];
}

/** One receive port on one host, shared by every tunnel that uses the same (port, encap, ipproto). */
export interface PortSpec {
    readonly host: string;
    readonly port: number;
    readonly encap: Encap;
    /** The inner protocol a FOU port delivers to; undefined for GUE (its header names the protocol). */
    readonly ipproto?: 4 | 41 | 47;
    /** True when any tunnel using the port persists. */
    readonly persist: boolean;
    /** Names of the tunnels using the port, in file order. */
    readonly tunnels: string[];
}

export interface Topology {
    /** Where it came from, used in messages (a path, or a label for the built-in default). */
    readonly source: string;
    readonly hosts: TopologyHost[];
    readonly tunnels: TunnelSpec[];
    /** Every receive port, host order then port; derived from the tunnels. */
    readonly ports: PortSpec[];
}

export interface TopologyOptions {
    /** "local": hosts are VMs on this machine's bridge; "aws": EC2 instances (no address/fou keys allowed). */
    readonly kind: "local" | "aws";
    /** local: this machine's address on the VM bridge with its length, e.g. "198.51.100.1/24". */
    readonly underlay?: string;
}

export const DEFAULT_PORT = 5555;
export const DEFAULT_GWIP_POOL = "10.10.10.0/24";
export const DEFAULT_GWIP_POOL6 = "fd00:10:10:10::/64";

/** The underlay of a local stack when options.underlay is not given: the guide's bridge. */
const DEFAULT_UNDERLAY = "198.51.100.1/24";
/** Local hosts without an address get network + 151 + their index: the guide's k1 .151, k2 .152. */
const FIRST_HOST_OFFSET = 151n;

const PROTOCOLS: readonly TunnelProtocol[] = ["ipip", "sit", "gre"];
const ENCAPS: readonly Encap[] = ["fou", "gue"];
const IPPROTO: Record<TunnelProtocol, 4 | 41 | 47> = { ipip: 4, sit: 41, gre: 47 };
const FAMILY: Record<TunnelProtocol, Family> = { ipip: 4, sit: 6, gre: 4 };
const TUNNEL_NAME = /^[a-z][a-z0-9-]{0,30}$/;

const TOP_KEYS = ["hosts", "gwipPool", "gwipPool6", "defaults", "tunnels"];
const HOST_KEYS_LOCAL = ["name", "address", "fou"];
const HOST_KEYS_AWS = ["name"];
/** Tunnel keys that `defaults` may set. */
const VALUE_KEYS = ["protocol", "encap", "port", "sport", "csum", "mtu", "ttl", "persist"] as const;
/** Tunnel keys that only make sense per tunnel. */
const OWN_KEYS = ["hosts", "name", "gwips", "interfaces", "routes"];
const TUNNEL_KEYS = ["hosts", "name", ...VALUE_KEYS, "gwips", "interfaces", "routes"];

// ---------------------------------------------------------------------------------------------
// The YAML tree, reduced to what a topology uses, with each node's offset for messages.

interface YMap {
    readonly kind: "map";
    readonly pos: number;
    readonly entries: Map<string, YEntry>;
}
interface YSeq {
    readonly kind: "seq";
    readonly pos: number;
    readonly items: YNode[];
}
interface YScalar {
    readonly kind: "scalar";
    readonly pos: number;
    /** string, number, boolean or null (YAML 1.2 core schema). */
    readonly value: unknown;
}
type YNode = YMap | YSeq | YScalar;
interface YEntry {
    readonly keyPos: number;
    readonly value: YNode;
}

/** Problems found so far, each placed at a node; listed in file order. */
class Report {
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
    /** Adds the message of a validate.ts/inet.ts check (which starts with the key, here `path`). */
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

function child(path: string, key: string): string {
    const k = /^[\w-]+$/.test(key) ? key : JSON.stringify(key);
    return path ? `${path}.${k}` : k;
}

/** A node as shown after "got": 70000, "yes", a list, a mapping, nothing. */
function got(n: YNode): string {
    if (n.kind === "map") {
        return "a mapping";
    }
    if (n.kind === "seq") {
        return `a list of ${n.items.length}`;
    }
    return n.value === null || n.value === undefined ? "nothing" : JSON.stringify(n.value);
}

function str(n: YNode): string | undefined {
    return n.kind === "scalar" && typeof n.value === "string" ? n.value : undefined;
}

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
function checkKeys(r: Report, map: YMap, path: string, what: string, allowed: readonly string[], special: (key: string) => string | undefined = () => undefined): void {
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

interface Values {
    protocol: TunnelProtocol;
    encap: Encap;
    port: number;
    sport: number | "auto";
    csum: boolean;
    mtu: number | undefined;
    ttl: number;
    persist: boolean;
}
type ValueKey = keyof Values;
type Read<T> = { value: T } | { error: string };

const BUILTIN: Values = { protocol: "ipip", encap: "fou", port: DEFAULT_PORT, sport: "auto", csum: false, mtu: undefined, ttl: 255, persist: false };

function readEnum<T extends string>(n: YNode, allowed: readonly T[]): Read<T> {
    const s = str(n);
    return s !== undefined && (allowed as readonly string[]).includes(s) ? { value: s as T } : { error: `must be one of ${allowed.join(", ")} (got ${got(n)})` };
}

function readPort(n: YNode, path: string): Read<number> {
    const v = n.kind === "scalar" ? n.value : got(n);
    const e = checkPort(path, v);
    return e === undefined ? { value: v as number } : { error: e.slice(path.length + 1) };
}

function readInt(n: YNode, path: string, min: number, max: number): Read<number> {
    const v = n.kind === "scalar" ? n.value : got(n);
    const e = checkInt(path, v, min, max);
    return e === undefined ? { value: v as number } : { error: e.slice(path.length + 1) };
}

function readBool(n: YNode): Read<boolean> {
    if (n.kind === "scalar" && typeof n.value === "boolean") {
        return { value: n.value };
    }
    const s = str(n);
    const hint = s !== undefined && /^(yes|no|on|off|y|n)$/i.test(s) ? `; YAML 1.2 reads ${s} as a string` : "";
    return { error: `must be true or false (got ${got(n)}${hint})` };
}

const READ: { [K in ValueKey]: (n: YNode, path: string) => Read<Values[K]> } = {
    protocol: (n) => readEnum(n, PROTOCOLS),
    encap: (n) => readEnum(n, ENCAPS),
    port: readPort,
    sport: (n, path) => {
        if (str(n) === "auto") {
            return { value: "auto" };
        }
        const p = readPort(n, path);
        return "error" in p ? { error: `must be "auto" or a UDP port number from 1 to 65535 (got ${got(n)})` } : p;
    },
    csum: readBool,
    // The lower bound for sit (1280) is checked once the protocol is known.
    mtu: (n, path) => readInt(n, path, 68, 65535),
    ttl: (n, path) => readInt(n, path, 1, 255),
    persist: readBool,
};

/** A tunnel's value for a key, and where it came from for messages. */
interface Field<T> {
    readonly value: T;
    /** The node that set it, or the tunnel's mapping when it comes from defaults or the built-in default. */
    readonly pos: number;
    readonly path: string;
    /** "" or " (from defaults.port, line 7)". */
    readonly from: string;
}

type Defaults = { [K in ValueKey]?: { value: Values[K]; line: number } };

// ---------------------------------------------------------------------------------------------

interface HostRec {
    readonly name: string;
    readonly index: number;
    readonly address?: Ip;
    readonly fou: boolean;
}

interface RouteRec {
    readonly cidr: Cidr;
    readonly pos: number;
    readonly path: string;
}

interface TunnelRec {
    readonly index: number;
    readonly path: string;
    readonly pos: number;
    readonly line: number;
    /** The name when valid, else the path: for cross-references. */
    label: string;
    name?: string;
    ends?: [HostRec, HostRec];
    readonly fields: { [K in ValueKey]?: Field<Values[K]> };
    family?: Family;
    /** Explicit or allocated; undefined when invalid or not allocated. */
    gwips: [Ip | undefined, Ip | undefined];
    gwipsGiven: boolean;
    ifnames?: [string, string];
    routes: [RouteRec[], RouteRec[]];
}

interface PortRec {
    readonly host: HostRec;
    readonly port: number;
    readonly encap: Encap;
    readonly ipproto?: 4 | 41 | 47;
    persist: boolean;
    readonly users: TunnelRec[];
}

interface Pool {
    readonly cidr: Cidr;
    readonly text: string;
    readonly pos: number;
    /** Set when the pool cannot be used (reported already, or reported when first needed). */
    unusable?: string;
    next: bigint;
    reportedUnusable: boolean;
}

/** Parses and validates; throws FouInputError (components/validate.ts) listing EVERY problem found. */
export function parseTopology(text: string, source: string, options: TopologyOptions): Topology {
    if (options.kind !== "local" && options.kind !== "aws") {
        throw new TypeError(`parseTopology: kind must be "local" or "aws" (got ${JSON.stringify(options.kind)})`);
    }
    let underlay: Cidr | undefined;
    if (options.kind === "local") {
        const u = options.underlay ?? DEFAULT_UNDERLAY;
        underlay = parseCidr(u);
        if (!underlay || underlay.family !== 4 || underlay.length < 8 || underlay.length > 30) {
            throw new TypeError(`parseTopology: underlay must be an IPv4 address with its length, like ${DEFAULT_UNDERLAY} (got ${JSON.stringify(u)})`);
        }
    }

    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
    const r = new Report(source, lc);
    for (const e of doc.errors) {
        r.add(e.pos[0], "YAML syntax", e.message);
    }
    if (doc.errors.length > 0) {
        // The tree of a file that does not parse would only add confusing problems.
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
    return new Reader(r, root, underlay).read();
}

/** One pass over a topology's tree: each section checked on its own, then the checks across tunnels. */
class Reader {
    private readonly underlayText: string;
    private readonly hosts = new Map<string, HostRec>();
    private readonly hostList: HostRec[] = [];
    /** Names written in hosts, valid or not: a tunnel naming an invalid one is not reported again. */
    private readonly written = new Set<string>();
    /** Set when the hosts section itself is wrong: then tunnels naming unknown hosts are not reported. */
    private hostsBroken = false;
    private pools: Record<Family, Pool | undefined> = { 4: undefined, 6: undefined };
    private readonly defaults: Defaults = {};
    private readonly tunnels: TunnelRec[] = [];
    private readonly tunnelByName = new Map<string, TunnelRec>();
    /** sorted host names and protocol → the first tunnel */
    private readonly tunnelByPair = new Map<string, TunnelRec>();
    /** host and interface name → tunnel */
    private readonly tunnelByIfname = new Map<string, TunnelRec>();
    /** host and canonical prefix → tunnel routing it */
    private readonly routeOwner = new Map<string, { tunnel: TunnelRec; line: number }>();
    /** gwipKey → where it is used, for messages */
    private readonly gwipOwner = new Map<string, string>();
    /** host and port → the receive port */
    private readonly ports = new Map<string, PortRec>();

    constructor(
        private readonly r: Report,
        private readonly root: YMap,
        /** The local bridge network, with this machine's address; undefined on aws. */
        private readonly underlay: Cidr | undefined,
    ) {
        this.underlayText = underlay ? `${formatCidr(underlay)} (this machine is ${formatIp({ family: 4, value: underlay.address })})` : "";
    }

    read(): Topology {
        const { r, root, underlay } = this;
        checkKeys(r, root, "", "top-level", TOP_KEYS);
        this.readHosts();
        this.pools = {
            4: readPool(r, root, "gwipPool", 4, DEFAULT_GWIP_POOL, underlay),
            6: readPool(r, root, "gwipPool6", 6, DEFAULT_GWIP_POOL6, underlay),
        };
        this.readDefaults();
        this.readTunnels();
        this.allocateGwips();
        this.checkRoutesAvoidGwips();
        this.collectPorts();
        this.checkSports();
        if (r.count > 0) {
            throw new FouInputError(r.problems());
        }
        return build(r.source, this.hostList, this.tunnels, [...this.ports.values()]);
    }

    private line(pos: number): number {
        return this.r.line(pos);
    }

    private get hostNames(): string {
        return this.hostList.map((h) => h.name).join(", ") || "none";
    }

    // ---- hosts

    private readHosts(): void {
        const { r, root } = this;
        const e = root.entries.get("hosts");
        if (!e) {
            r.add(root.pos, "hosts", "required: a list of at least 2 hosts, each like {name: k1}");
            this.hostsBroken = true;
            return;
        }
        if (e.value.kind !== "seq") {
            r.add(e.value.pos, "hosts", `must be a list of at least 2 hosts, each like {name: k1} (got ${got(e.value)})`);
            this.hostsBroken = true;
            return;
        }
        if (e.value.items.length < 2) {
            r.add(e.value.pos, "hosts", `must list at least 2 hosts, since a tunnel joins two (got ${e.value.items.length})`);
        }
        const addressOwner = new Map<bigint, { name: string; line: number }>();
        const nameOwner = new Map<string, { path: string; line: number }>();
        e.value.items.forEach((item, i) => {
            const path = `hosts[${i}]`;
            if (item.kind !== "map") {
                r.add(item.pos, path, `must be a mapping like {name: k1} (got ${got(item)})`);
                this.hostsBroken = true;
                return;
            }
            const local = this.underlay !== undefined;
            checkKeys(r, item, path, local ? "host" : "aws host", local ? HOST_KEYS_LOCAL : HOST_KEYS_AWS, (key) =>
                key === "address"
                    ? "not allowed for aws hosts: EC2 assigns the addresses"
                    : key === "fou"
                      ? "not allowed for aws hosts: only local VMs can be booted with fou made unusable"
                      : undefined,
            );
            const name = this.hostName(item, path, nameOwner);
            let fou = true;
            const fouE = local ? item.entries.get("fou") : undefined;
            if (fouE) {
                const b = readBool(fouE.value);
                if ("error" in b) {
                    r.add(fouE.value.pos, `${path}.fou`, b.error);
                } else {
                    fou = b.value;
                }
            }
            const address = this.hostAddress(item, path, i, name, addressOwner);
            if (name) {
                const h: HostRec = { name, index: i, address, fou };
                this.hosts.set(name, h);
                this.hostList.push(h);
            }
        });
    }

    private hostName(item: YMap, path: string, nameOwner: Map<string, { path: string; line: number }>): string | undefined {
        const { r } = this;
        const e = item.entries.get("name");
        if (!e) {
            r.add(item.pos, `${path}.name`, "required: the host's name, like k1");
            this.hostsBroken = true;
            return undefined;
        }
        const v = e.value.kind === "scalar" ? e.value.value : got(e.value);
        if (typeof v === "string") {
            this.written.add(v);
        }
        if (!r.check(e.value.pos, `${path}.name`, checkHostName(`${path}.name`, v))) {
            return undefined;
        }
        const name = v as string;
        const first = nameOwner.get(name);
        if (first) {
            r.add(e.value.pos, `${path}.name`, `host name ${name} is already used by ${first.path} (line ${first.line})`);
            return undefined;
        }
        nameOwner.set(name, { path, line: this.line(e.value.pos) });
        return name;
    }

    /** A local host's address, as written or defaulted (network + 151 + index); undefined on aws or when invalid. */
    private hostAddress(item: YMap, path: string, i: number, name: string | undefined, addressOwner: Map<bigint, { name: string; line: number }>): Ip | undefined {
        const { r, underlay } = this;
        if (!underlay) {
            return undefined;
        }
        const e = item.entries.get("address");
        const pos = e ? e.value.pos : item.pos;
        let ip: Ip | undefined;
        if (e) {
            const p = parseIp(str(e.value));
            if (p?.family !== 4) {
                r.add(pos, `${path}.address`, `must be an IPv4 address like 198.51.100.151 (got ${got(e.value)})`);
                return undefined;
            }
            ip = p;
        } else {
            ip = { family: 4, value: underlay.network + FIRST_HOST_OFFSET + BigInt(i) };
        }
        const a = formatIp(ip);
        const what = e ? a : `the default address ${a} (the underlay network + ${FIRST_HOST_OFFSET + BigInt(i)})`;
        const fix = e ? "" : "; set address";
        const broadcast = underlay.network | ((1n << BigInt(32 - underlay.length)) - 1n);
        const first = addressOwner.get(ip.value);
        const bad = !cidrContains(underlay, ip)
            ? `${what} is outside the underlay network ${this.underlayText}${fix}`
            : ip.value === underlay.network
              ? `${what} is the address of the underlay network ${formatCidr(underlay)} itself; hosts need a host address${fix}`
              : ip.value === underlay.address
                ? `${what} is the gateway's own address (this machine on the VM bridge)${fix}`
                : ip.value === broadcast
                  ? `${what} is the broadcast address of the underlay network ${formatCidr(underlay)}${fix}`
                  : first
                    ? `${what} is already the address of ${first.name} (line ${first.line}); each host needs its own${fix}`
                    : undefined;
        if (bad) {
            r.add(pos, `${path}.address`, bad);
            return undefined;
        }
        addressOwner.set(ip.value, { name: name ?? path, line: this.line(pos) });
        return ip;
    }

    // ---- defaults

    private readDefaults(): void {
        const { r } = this;
        const e = this.root.entries.get("defaults");
        if (!e) {
            return;
        }
        if (e.value.kind !== "map") {
            r.add(e.value.pos, "defaults", `must be a mapping of tunnel values, like {port: 5555} (got ${got(e.value)})`);
            return;
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
                (this.defaults as Record<K, { value: Values[K]; line: number }>)[k] = { value: res.value, line: this.line(d.value.pos) };
            }
        };
        for (const k of VALUE_KEYS) {
            const d = map.entries.get(k);
            if (d) {
                set(k, d);
            }
        }
    }

    // ---- tunnels, each on its own and against the ones before it

    private readTunnels(): void {
        const { r, root } = this;
        const e = root.entries.get("tunnels");
        if (!e) {
            r.add(root.pos, "tunnels", "required: a list of at least 1 tunnel, each like {hosts: [k1, k2]}");
            return;
        }
        if (e.value.kind !== "seq" || e.value.items.length === 0) {
            r.add(e.value.pos, "tunnels", `must be a non-empty list of tunnels, each like {hosts: [k1, k2]} (got ${got(e.value)})`);
            return;
        }
        e.value.items.forEach((item, index) => {
            const path = `tunnels[${index}]`;
            if (item.kind !== "map") {
                r.add(item.pos, path, `must be a mapping like {hosts: [k1, k2]} (got ${got(item)})`);
                return;
            }
            const t: TunnelRec = {
                index,
                path,
                pos: item.pos,
                line: this.line(item.pos),
                label: path,
                fields: {},
                gwips: [undefined, undefined],
                gwipsGiven: item.entries.has("gwips"),
                routes: [[], []],
            };
            this.tunnels.push(t);
            checkKeys(r, item, path, "tunnel", TUNNEL_KEYS);
            this.tunnelHosts(t, item);
            this.tunnelValues(t, item);
            // A second tunnel of a pair and protocol also repeats the first one's default name and
            // interfaces: only the pair is reported.
            const pairTaken = this.checkPair(t, item);
            this.tunnelName(t, item, pairTaken);
            this.tunnelGwips(t, item);
            this.tunnelInterfaces(t, item, pairTaken);
            this.tunnelRoutes(t, item);
        });
    }

    private tunnelHosts(t: TunnelRec, item: YMap): void {
        const { r } = this;
        const e = item.entries.get("hosts");
        if (!e) {
            r.add(item.pos, `${t.path}.hosts`, `required: the two hosts the tunnel joins, like [k1, k2] (the hosts are ${this.hostNames})`);
            return;
        }
        if (e.value.kind !== "seq" || e.value.items.length !== 2) {
            r.add(e.value.pos, `${t.path}.hosts`, `must be a list of the two hosts the tunnel joins, like [k1, k2] (got ${got(e.value)})`);
            return;
        }
        const ends = e.value.items.map((n, i) => {
            const s = str(n);
            const h = s === undefined ? undefined : this.hosts.get(s);
            if (!h && !this.hostsBroken && !(s !== undefined && this.written.has(s))) {
                r.add(n.pos, `${t.path}.hosts[${i}]`, `unknown host ${got(n)}; the hosts are ${this.hostNames}`);
            }
            return h;
        });
        if (ends[0] && ends[1]) {
            if (ends[0] === ends[1]) {
                r.add(e.value.pos, `${t.path}.hosts`, `joins ${ends[0].name} to itself; a tunnel joins two different hosts`);
            } else {
                t.ends = [ends[0], ends[1]];
            }
        }
    }

    /** Each value from the tunnel, else defaults, else built in. */
    private tunnelValues(t: TunnelRec, item: YMap): void {
        const field = <K extends ValueKey>(k: K): Field<Values[K]> | undefined => {
            const path = `${t.path}.${k}`;
            const e = item.entries.get(k);
            if (e) {
                const res = READ[k](e.value, path);
                if ("error" in res) {
                    this.r.add(e.value.pos, path, res.error);
                    return undefined;
                }
                return { value: res.value, pos: e.value.pos, path, from: "" };
            }
            const d = this.defaults[k];
            if (d) {
                return { value: d.value, pos: item.pos, path, from: ` (from defaults.${k}, line ${d.line})` };
            }
            return { value: BUILTIN[k], pos: item.pos, path, from: "" };
        };
        const fields = t.fields as Record<ValueKey, Field<unknown> | undefined>;
        for (const k of VALUE_KEYS) {
            fields[k] = field(k);
        }
        const protocol = t.fields.protocol?.value;
        t.family = protocol ? FAMILY[protocol] : undefined;
        const mtu = t.fields.mtu;
        if (protocol === "sit" && mtu && mtu.value !== undefined && mtu.value < 1280) {
            this.r.add(mtu.pos, mtu.path, `${mtu.value}${mtu.from} is below 1280, the smallest MTU IPv6 allows, and a sit tunnel carries IPv6; use 1280 to 65535`);
        }
    }

    /** One tunnel per protocol and pair of hosts; true when this one is a second. */
    private checkPair(t: TunnelRec, item: YMap): boolean {
        const protocol = t.fields.protocol?.value;
        if (!t.ends || !protocol) {
            return false;
        }
        const key = `${[t.ends[0].name, t.ends[1].name].sort().join("\0")}\0${protocol}`;
        const first = this.tunnelByPair.get(key);
        if (!first) {
            this.tunnelByPair.set(key, t);
            return false;
        }
        this.r.add(
            item.entries.get("hosts")!.value.pos,
            `${t.path}.hosts`,
            `${t.ends[0].name} and ${t.ends[1].name} are already joined by ${protocol} tunnel ${first.label} (line ${first.line}); ` +
                `the kernel tells ${protocol} tunnels apart only by local and remote address, so a pair of hosts can have one tunnel per protocol`,
        );
        return true;
    }

    private tunnelName(t: TunnelRec, item: YMap, pairTaken: boolean): void {
        const { r } = this;
        const e = item.entries.get("name");
        let name: string | undefined;
        if (e) {
            const s = str(e.value);
            if (s === undefined || !TUNNEL_NAME.test(s)) {
                r.add(e.value.pos, `${t.path}.name`, `must be 1-31 characters of a-z, 0-9 and '-', starting with a letter (got ${got(e.value)})`);
                return;
            }
            name = s;
        } else if (t.ends) {
            name = `${t.ends[0].name}-${t.ends[1].name}`;
        } else {
            return;
        }
        const first = this.tunnelByName.get(name);
        if (!first) {
            this.tunnelByName.set(name, t);
            t.name = name;
            t.label = name;
        } else if (e) {
            r.add(e.value.pos, `${t.path}.name`, `tunnel name ${name} is already used by ${first.path} (line ${first.line})`);
        } else if (!pairTaken) {
            r.add(item.pos, `${t.path}.name`, `the default name ${name} is already the name of ${first.path} (line ${first.line}); set name to tell these tunnels apart`);
        }
    }

    private endLabel(t: TunnelRec, i: number): string {
        return t.ends?.[i].name ?? (i === 0 ? "the first host" : "the second host");
    }

    /** Explicit GWIPs, reserved in gwipOwner; the others are allocated once all are known. */
    private tunnelGwips(t: TunnelRec, item: YMap): void {
        const { r, underlay } = this;
        const e = item.entries.get("gwips");
        if (!e) {
            return;
        }
        const v = e.value;
        const like = t.family === 6 ? "[fd00:10:10:10::1, fd00:10:10:10::2]" : "[10.10.10.1, 10.10.10.2]";
        if (v.kind !== "seq" || v.items.length !== 2) {
            r.add(v.pos, `${t.path}.gwips`, `must be a list of two GWIPs, one per host in the order of hosts, like ${like} (got ${got(v)})`);
            return;
        }
        const protocol = t.fields.protocol?.value;
        v.items.forEach((n, i) => {
            const path = `${t.path}.gwips[${i}]`;
            const ip = parseIp(str(n));
            if (!ip) {
                r.add(n.pos, path, `must be an ${t.family === 6 ? "IPv6" : t.family === 4 ? "IPv4" : "IP"} address (got ${got(n)})`);
                return;
            }
            const a = formatIp(ip);
            const special = notUnicast(ip);
            const first = this.gwipOwner.get(gwipKey(ip));
            const bad =
                t.family !== undefined && ip.family !== t.family
                    ? `${protocol === "ipip" ? "an" : "a"} ${protocol} tunnel carries IPv${t.family}, so its GWIPs are IPv${t.family} addresses ` +
                      `like ${t.family === 6 ? "fd00:10:10:10::1" : "10.10.10.1"} (got ${a})`
                    : special
                      ? `${a} is ${special}; a GWIP must be a unicast address`
                      : underlay && cidrContains(underlay, ip)
                        ? `${a} lies in the underlay network ${this.underlayText}; GWIPs must be outside it`
                        : i === 1 && t.gwips[0]?.value === ip.value
                          ? `${a} is also the GWIP of the other end (gwips[0]); each end needs its own`
                          : first
                            ? `GWIP ${a} is already ${first}; each GWIP may be used once in the file`
                            : undefined;
            if (bad) {
                r.add(n.pos, path, bad);
                return;
            }
            this.gwipOwner.set(gwipKey(ip), `the GWIP of ${this.endLabel(t, i)} in tunnel ${t.label} (line ${this.line(n.pos)})`);
            t.gwips[i] = ip;
        });
    }

    private tunnelInterfaces(t: TunnelRec, item: YMap, pairTaken: boolean): void {
        const { r } = this;
        const e = item.entries.get("interfaces");
        let ifnames: [string, string] | undefined;
        if (e) {
            const v = e.value;
            if (v.kind !== "seq" || v.items.length !== 2) {
                r.add(v.pos, `${t.path}.interfaces`, `must be a list of two interface names, one per host in the order of hosts, like [ftok2, ftok1] (got ${got(v)})`);
                return;
            }
            const ok = v.items.map((n, i) => {
                const path = `${t.path}.interfaces[${i}]`;
                const s = n.kind === "scalar" ? n.value : got(n);
                if (!r.check(n.pos, path, checkIfname(path, s))) {
                    return false;
                }
                if (s === "lo") {
                    r.add(n.pos, path, "lo is the loopback interface; choose another name");
                    return false;
                }
                return true;
            });
            if (ok[0] && ok[1]) {
                ifnames = [str(v.items[0])!, str(v.items[1])!];
            }
        } else if (t.ends) {
            // fto<peer>: 3 + at most 12 characters (checkHostName), so always valid; checked all the same.
            const derived: [string, string] = [`fto${t.ends[1].name}`, `fto${t.ends[0].name}`];
            const ok = derived.map((d) => r.check(item.pos, `${t.path}.interfaces`, checkIfname(`${t.path}.interfaces`, d)));
            if (ok[0] && ok[1]) {
                ifnames = derived;
            }
        }
        if (!ifnames || !t.ends) {
            return;
        }
        let taken = false;
        ifnames.forEach((ifname, i) => {
            const host = t.ends![i].name;
            const key = `${host}\0${ifname}`;
            const first = this.tunnelByIfname.get(key);
            if (!first) {
                this.tunnelByIfname.set(key, t);
                return;
            }
            taken = true;
            const hint = "; set interfaces to give this tunnel other names";
            if (e) {
                r.add((e.value as YSeq).items[i].pos, `${t.path}.interfaces[${i}]`, `interface ${ifname} on ${host} is already used by tunnel ${first.label} (line ${first.line})${hint}`);
            } else if (!pairTaken) {
                r.add(item.pos, `${t.path}.interfaces`, `the default interface name ${ifname} on ${host} is already used by tunnel ${first.label} (line ${first.line})${hint}`);
            }
        });
        if (!taken) {
            t.ifnames = ifnames;
        }
    }

    /** Routes as written; whether they cover a GWIP is checked once all GWIPs are known. */
    private tunnelRoutes(t: TunnelRec, item: YMap): void {
        const { r } = this;
        const e = item.entries.get("routes");
        if (!e) {
            return;
        }
        const ends = t.ends ? `${t.ends[0].name}, ${t.ends[1].name}` : "the tunnel's hosts";
        if (e.value.kind !== "map") {
            r.add(e.value.pos, `${t.path}.routes`, `must be a mapping from this tunnel's hosts (${ends}) to lists of prefixes, like {k1: [10.20.2.0/24]} (got ${got(e.value)})`);
            return;
        }
        for (const [host, list] of e.value.entries) {
            const path = child(`${t.path}.routes`, host);
            const end = t.ends?.findIndex((h) => h.name === host);
            if (end === -1) {
                r.add(list.keyPos, path, `${host} is not a host of this tunnel; routes are keyed by its hosts ${ends}`);
            }
            if (list.value.kind !== "seq") {
                r.add(list.value.pos, path, `must be a list of prefixes that ${host} routes into the tunnel, like [10.20.2.0/24] (got ${got(list.value)})`);
                continue;
            }
            list.value.items.forEach((n, j) => {
                const rp = `${path}[${j}]`;
                const c = readRoute(r, n, rp, t.family, this.underlay, this.underlayText);
                if (!c || end === undefined || end < 0) {
                    return;
                }
                const key = `${host}\0${formatCidr(c)}`;
                const first = this.routeOwner.get(key);
                if (first) {
                    r.add(n.pos, rp, `${host} already routes ${formatCidr(c)} into tunnel ${first.tunnel.label} (line ${first.line}); a prefix can go through one tunnel only`);
                    return;
                }
                this.routeOwner.set(key, { tunnel: t, line: this.line(n.pos) });
                t.routes[end].push({ cidr: c, pos: n.pos, path: rp });
            });
        }
    }

    // ---- across tunnels

    /**
     * GWIPs not given: in file order, tunnel by tunnel, end a then b, the lowest address of the
     * pool that is not its first, not (IPv4) its last, and not used anywhere in the file.
     */
    private allocateGwips(): void {
        const { r } = this;
        for (const t of this.tunnels) {
            if (t.gwipsGiven || t.family === undefined) {
                continue;
            }
            const pool = this.pools[t.family];
            const key = t.family === 6 ? "gwipPool6" : "gwipPool";
            if (!pool) {
                continue; // invalid, reported
            }
            if (pool.unusable) {
                if (!pool.reportedUnusable) {
                    pool.reportedUnusable = true;
                    r.add(pool.pos, key, pool.unusable);
                }
                continue;
            }
            const size = 1n << BigInt((t.family === 4 ? 32 : 128) - pool.cidr.length);
            const last = pool.cidr.network + size - (t.family === 4 ? 2n : 1n);
            for (const i of [0, 1] as const) {
                while (pool.next <= last && this.gwipOwner.has(gwipKey({ family: t.family, value: pool.next }))) {
                    pool.next++;
                }
                if (pool.next > last) {
                    r.add(t.pos, `${t.path}.gwips`, `${key} ${pool.text} has no free address left for the GWIP of ${this.endLabel(t, i)}; give gwips or use a larger pool`);
                    continue;
                }
                const ip: Ip = { family: t.family, value: pool.next++ };
                this.gwipOwner.set(gwipKey(ip), `the GWIP of ${this.endLabel(t, i)} in tunnel ${t.label} (line ${t.line}, from ${key})`);
                t.gwips[i] = ip;
            }
        }
    }

    private checkRoutesAvoidGwips(): void {
        for (const t of this.tunnels) {
            for (const route of t.routes.flat()) {
                const covered = t.gwips.flatMap((g, i) => (g && cidrContains(route.cidr, g) ? [`${formatIp(g)} (${this.endLabel(t, i)})`] : []));
                if (covered.length > 0) {
                    this.r.add(
                        route.pos,
                        route.path,
                        `${formatCidr(route.cidr)} contains ${covered.join(" and ")}, ${covered.length > 1 ? "the GWIPs" : "a GWIP"} of this tunnel; ` +
                            "the GWIPs are reached through the tunnel already, a route must not cover them",
                    );
                }
            }
        }
    }

    /** One receive port per host and port number: a FOU port delivers one inner protocol, a GUE port any. */
    private collectPorts(): void {
        const binding = (encap: Encap, protocol: TunnelProtocol) =>
            encap === "gue" ? "a GUE port" : `a FOU port delivering ipproto ${IPPROTO[protocol]} (${protocol})`;
        for (const t of this.tunnels) {
            const { port, encap, protocol, persist } = t.fields;
            if (!t.ends || !port || !encap || !protocol) {
                continue;
            }
            const ipproto = encap.value === "fou" ? IPPROTO[protocol.value] : undefined;
            for (const h of t.ends) {
                const key = portKey(h.name, port.value);
                const p = this.ports.get(key);
                if (!p) {
                    this.ports.set(key, { host: h, port: port.value, encap: encap.value, ipproto, persist: persist?.value ?? false, users: [t] });
                } else if (p.encap === encap.value && p.ipproto === ipproto) {
                    p.users.push(t);
                    p.persist ||= persist?.value ?? false;
                } else {
                    const owner = p.users[0];
                    this.r.add(
                        port.pos,
                        port.path,
                        `port ${port.value}${port.from} on ${h.name} is already ${binding(p.encap, owner.fields.protocol!.value)} for tunnel ${owner.label} ` +
                            `(line ${owner.line}), but this tunnel needs ${binding(encap.value, protocol.value)}; ` +
                            `a FOU port delivers one inner protocol and cannot also be a GUE port: use another port${encap.value === "fou" ? " or encap gue" : ""}`,
                    );
                }
            }
        }
    }

    /** A fixed sport must not be a receive port of the tunnel's hosts (a rule of this project, see docs). */
    private checkSports(): void {
        for (const t of this.tunnels) {
            const sport = t.fields.sport;
            if (!t.ends || !sport || sport.value === "auto") {
                continue;
            }
            const value = sport.value;
            const clashes = t.ends.flatMap((h) => {
                const p = this.ports.get(portKey(h.name, value));
                return p ? [`on ${h.name} (tunnel ${p.users[0].label}, line ${p.users[0].line})`] : [];
            });
            if (clashes.length > 0) {
                this.r.add(
                    sport.pos,
                    sport.path,
                    `${value}${sport.from} is also a receive port ${clashes.join(" and ")}; a fixed sport must differ from every receive port of the tunnel's hosts`,
                );
            }
        }
    }
}

function gwipKey(ip: Ip): string {
    return `${ip.family}/${ip.value}`;
}

function portKey(host: string, port: number): string {
    return `${host}\0${port}`;
}

function readPool(r: Report, root: YMap, key: string, family: Family, dflt: string, underlay: Cidr | undefined): Pool | undefined {
    const e = root.entries.get(key);
    const text = e ? str(e.value) : dflt;
    const pos = e ? e.value.pos : root.pos;
    const like = family === 4 ? DEFAULT_GWIP_POOL : DEFAULT_GWIP_POOL6;
    const c = parseCidr(text);
    if (!e && !c) {
        throw new Error(`bad built-in pool ${dflt}`);
    }
    if (!c || c.family !== family) {
        const other = family === 4 ? "; IPv6 GWIPs (sit tunnels) come from gwipPool6" : "; IPv4 GWIPs (ipip, gre) come from gwipPool";
        r.add(pos, key, `must be an IPv${family} prefix like ${like}${c ? other : ""} (got ${got(e!.value)})`);
        return undefined;
    }
    const shown = formatCidr(c);
    if (c.address !== c.network) {
        r.add(pos, key, `${text} has host bits set; the network is ${shown}`);
        return undefined;
    }
    const maxLength = family === 4 ? 30 : 126;
    if (c.length > maxLength) {
        r.add(pos, key, `${shown} has room for fewer than the 2 GWIPs of one tunnel; use a prefix of length ${maxLength} or shorter`);
        return undefined;
    }
    const special = overlapsNotUnicast(c);
    if (special) {
        r.add(pos, key, `${shown} overlaps addresses that are ${special}; GWIPs must be unicast addresses`);
        return undefined;
    }
    const pool: Pool = { cidr: c, text: shown, pos, next: c.network + 1n, reportedUnusable: false };
    if (underlay && cidrsOverlap(underlay, c)) {
        const why = `overlaps the underlay network ${formatCidr(underlay)}; GWIPs must lie outside it`;
        if (e) {
            r.add(pos, key, `${shown} ${why}`);
            return undefined;
        }
        // The default pool matters only if a GWIP is taken from it.
        pool.unusable = `the default pool ${shown} ${why}: set ${key}`;
    }
    return pool;
}

function readRoute(r: Report, n: YNode, path: string, family: Family | undefined, underlay: Cidr | undefined, underlayText: string): Cidr | undefined {
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
    return c;
}

function build(source: string, hosts: HostRec[], tunnels: TunnelRec[], ports: PortRec[]): Topology {
    const need = <T>(v: T | undefined, what: string): T => {
        if (v === undefined) {
            throw new Error(`topology.ts: ${what} missing after validation`);
        }
        return v;
    };
    return {
        source,
        hosts: hosts.map((h) => ({ name: h.name, ...(h.address ? { address: formatIp(h.address) } : {}), fou: h.fou })),
        tunnels: tunnels.map((t): TunnelSpec => {
            const value = <K extends ValueKey>(k: K): Values[K] => need<Field<Values[K]>>(t.fields[k], `${t.path}.${k}`).value;
            const protocol = value("protocol");
            const ends = need(t.ends, `${t.path}.hosts`);
            const ifnames = need(t.ifnames, `${t.path}.interfaces`);
            const end = (i: 0 | 1): TunnelEndSpec => ({
                host: ends[i].name,
                gwip: formatIp(need(t.gwips[i], `${t.path}.gwips[${i}]`)),
                ifname: ifnames[i],
                routes: t.routes[i].map((x) => formatCidr(x.cidr)),
            });
            const mtu = value("mtu");
            return {
                name: need(t.name, `${t.path}.name`),
                protocol,
                ipproto: IPPROTO[protocol],
                family: FAMILY[protocol],
                encap: value("encap"),
                port: value("port"),
                sport: value("sport"),
                csum: value("csum"),
                ...(mtu !== undefined ? { mtu } : {}),
                ttl: value("ttl"),
                persist: value("persist"),
                ends: [end(0), end(1)],
            };
        }),
        ports: ports
            .sort((a, b) => a.host.index - b.host.index || a.port - b.port)
            .map((p) => ({
                host: p.host.name,
                port: p.port,
                encap: p.encap,
                ...(p.ipproto !== undefined ? { ipproto: p.ipproto } : {}),
                persist: p.persist,
                tunnels: p.users.map((t) => need(t.name, `${t.path}.name`)),
            })),
    };
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
