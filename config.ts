import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { checkIpv4, cidrContains, formatIp, parseCidr, parseIp } from "./lib/inet";
import { checkHostName, checkInt, checkPort, parseBool, throwIfInvalid, FouInputError } from "./lib/validate";
import { AwsSettings, parseAwsSettings } from "./hosts/awsConfig";
import { loadTopology, parseTopology, Topology, TopologyOptions } from "./topology";

/** One local VM: its name (used in interface names) and underlay address. */
export interface LocalVmSettings {
    readonly name: string;
    readonly address: string;
    /** false boots the VM with its fou module made unusable: the "kernel too old" case. */
    readonly fou: boolean;
}

export interface LocalSettings {
    /** This machine's address on the VM bridge, with the prefix length: 198.51.100.1/24. */
    readonly gateway: string;
    /** One VM per topology host. */
    readonly vms: LocalVmSettings[];
    readonly memoryMb: number;
}

export interface Settings {
    readonly hosts: "local" | "aws";
    /** false keeps the hosts but removes every tunnel component (and restores the hosts). */
    readonly tunnel: boolean;
    /** Hosts and tunnels: the file named by `topology`, else the guide's k1/k2 from port/gwips/localVms. */
    readonly topology: Topology;
    readonly check: boolean;
    readonly local: LocalSettings;
    /** Set when hosts is "aws". */
    readonly aws?: AwsSettings;
}

/** The guide's two hosts, on TEST-NET-2 (this machine's uplink uses TEST-NET-1). */
export const DEFAULT_LOCAL: LocalSettings = {
    gateway: "198.51.100.1/24",
    vms: [
        { name: "k1", address: "198.51.100.151", fou: true },
        { name: "k2", address: "198.51.100.152", fou: true },
    ],
    memoryMb: 768,
};

/** Reads the stack configuration; throws one error listing every bad key before anything is declared. */
export function loadSettings(cfg: pulumi.Config): Settings {
    return parseSettings((key) => {
        const raw = cfg.get(key);
        if (raw === undefined) {
            return undefined;
        }
        try {
            return JSON.parse(raw) as unknown;
        } catch {
            return raw; // a plain string value
        }
    }, cfg.name);
}

/** Parses settings from a key lookup (pure, for tests). `ns` prefixes keys in messages. */
export function parseSettings(get: (key: string) => unknown, ns = "fou-tunnel"): Settings {
    const key = (k: string) => `${ns}:${k}`;
    const problems: (string | undefined)[] = [];

    const hosts = get("hosts") ?? "local";
    if (hosts !== "local" && hosts !== "aws") {
        problems.push(`${key("hosts")} must be "local" or "aws" (got ${JSON.stringify(hosts)})`);
    }
    let aws: AwsSettings | undefined;
    if (hosts === "aws") {
        try {
            aws = parseAwsSettings(get, ns);
        } catch (e) {
            if (!(e instanceof FouInputError)) throw e;
            problems.push(...e.problems);
        }
    }
    const tunnel = parseBool(get("tunnel"), true, key("tunnel"), problems);
    const check = parseBool(get("check"), true, key("check"), problems);

    const topologyPath = get("topology");
    const legacy = ["port", "gwips", "localVms"].filter((k) => get(k) !== undefined);
    let topology: Topology | undefined;
    let local: LocalSettings | undefined;
    if (topologyPath !== undefined) {
        // A file names the hosts and tunnels; the guide's two-host keys would contradict it.
        if (legacy.length > 0) {
            problems.push(`${legacy.map(key).join(", ")} cannot be combined with ${key("topology")}: set ${legacy.length > 1 ? "them" : "it"} in the topology file`);
        }
        const base = hosts === "aws" ? undefined : parseLocal(get, key, problems, false);
        if (typeof topologyPath !== "string" || topologyPath.trim() === "") {
            // Relative paths are from the project directory, where pulumi runs the program.
            problems.push(`${key("topology")} must be the path of a topology YAML file, relative to the project directory (got ${JSON.stringify(topologyPath)})`);
        } else if (hosts === "local" || hosts === "aws") {
            topology = collect(problems, () =>
                loadTopology(topologyPath, { kind: hosts, ...(base ? { underlay: base.gateway } : {}) }),
            );
        }
        if (base && topology) {
            local = { ...base, vms: topology.hosts.map((h) => ({ name: h.name, address: h.address as string, fou: h.fou })) };
        }
    } else {
        // The guide: two hosts, one tunnel, from the stack's own keys.
        const port = num(get("port") ?? 5555);
        problems.push(checkPort(key("port"), port));
        const gwips = get("gwips") ?? ["10.10.10.1", "10.10.10.2"];
        if (!Array.isArray(gwips) || gwips.length !== 2) {
            problems.push(`${key("gwips")} must be a list of two IPv4 addresses, one per host (got ${JSON.stringify(gwips)})`);
        } else {
            gwips.forEach((g, i) => problems.push(checkIpv4(`${key("gwips")}[${i}]`, g)));
            if (gwips[0] === gwips[1]) {
                problems.push(`${key("gwips")} gives both hosts ${gwips[0]}; each host needs its own GWIP`);
            }
        }
        local = hosts === "aws" ? undefined : parseLocal(get, key, problems, true);
        if (local && Array.isArray(gwips)) {
            const lan = parseCidr(local.gateway, true);
            gwips.forEach((g, i) => {
                const ip = parseIp(g);
                if (lan && ip?.family === 4 && cidrContains(lan, ip)) {
                    problems.push(`${key("gwips")}[${i}] ${g} lies in the underlay network ${local?.gateway}; GWIPs must be outside it`);
                }
            });
        }
        const vms = local?.vms ?? DEFAULT_LOCAL.vms;
        if (problems.every((p) => p === undefined) && (hosts === "local" || hosts === "aws")) {
            const file = {
                hosts: vms.map((v) => (hosts === "aws" ? { name: v.name } : { name: v.name, address: v.address, fou: v.fou })),
                tunnels: [{ hosts: [vms[0].name, vms[1].name], port, gwips }],
            };
            const options: TopologyOptions = { kind: hosts, ...(local ? { underlay: local.gateway } : {}) };
            topology = collect(problems, () => parseTopology(stringify(file), `${ns} stack settings (the guide's two hosts)`, options));
        }
    }
    throwIfInvalid(problems);
    return {
        hosts: hosts as "local" | "aws",
        ...(aws ? { aws } : {}),
        tunnel,
        check,
        topology: topology as Topology,
        local: local ?? DEFAULT_LOCAL,
    };
}

/** Runs a parser, moving its FouInputError's problems into `problems`. */
function collect<T>(problems: (string | undefined)[], parse: () => T): T | undefined {
    try {
        return parse();
    } catch (e) {
        if (!(e instanceof FouInputError)) throw e;
        problems.push(...e.problems);
        return undefined;
    }
}

/** The VM network and memory; with `withVms`, the two VMs of `localVms` too (else left empty). */
function parseLocal(
    get: (key: string) => unknown,
    key: (k: string) => string,
    problems: (string | undefined)[],
    withVms: boolean,
): LocalSettings | undefined {
    const gateway = get("localGateway") ?? DEFAULT_LOCAL.gateway;
    const memoryMb = num(get("localVmMemory") ?? DEFAULT_LOCAL.memoryMb);
    problems.push(checkInt(key("localVmMemory"), memoryMb, 768, 8192));
    const written = parseCidr(gateway);
    const lan = written?.family === 4 ? written : undefined;
    if (lan === undefined || lan.length < 8 || lan.length > 30) {
        problems.push(`${key("localGateway")} must be this machine's address on the VM network with its length, like 198.51.100.1/24 (got ${JSON.stringify(gateway)})`);
    } else {
        problems.push(checkIpv4(key("localGateway"), formatIp({ family: 4, value: lan.address })));
    }
    if (!withVms) {
        return lan === undefined ? undefined : { gateway: String(gateway), vms: [], memoryMb: memoryMb as number };
    }
    const rawVms = get("localVms") ?? DEFAULT_LOCAL.vms;
    if (!Array.isArray(rawVms) || rawVms.length !== 2) {
        problems.push(`${key("localVms")} must list two VMs like [{"name":"k1","address":"198.51.100.151"}, …] (got ${JSON.stringify(rawVms)})`);
        return undefined;
    }
    const vms = rawVms.map((v: unknown, i): LocalVmSettings => {
        const at = `${key("localVms")}[${i}]`;
        const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
        problems.push(checkHostName(`${at}.name`, o.name), checkIpv4(`${at}.address`, o.address));
        const ip = parseIp(o.address);
        if (lan && ip?.family === 4) {
            if (!cidrContains(lan, ip)) {
                problems.push(`${at}.address ${o.address} is outside the VM network ${gateway}`);
            } else if (ip.value === lan.address) {
                problems.push(`${at}.address ${o.address} is the gateway's own address`);
            }
        }
        return { name: String(o.name), address: String(o.address), fou: parseBool(o.fou, true, `${at}.fou`, problems) };
    });
    if (vms[0].name === vms[1].name) {
        problems.push(`${key("localVms")}: both VMs are named "${vms[0].name}"`);
    }
    if (vms[0].address === vms[1].address) {
        problems.push(`${key("localVms")}: both VMs have address ${vms[0].address}`);
    }
    return { gateway: String(gateway), vms, memoryMb: memoryMb as number };
}

function num(v: unknown): unknown {
    return typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
}
