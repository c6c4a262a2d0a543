import { statSync } from "fs";
import * as pulumi from "@pulumi/pulumi";
import { AwsSettings, parseAwsSettings } from "./hosts/awsConfig";
import { LocalSettings, LocalVmSettings } from "./hosts/localConfig";
import { SshCredentials, SshEnvironment, SshHostSettings, SshSettings, parseSshCredentials } from "./hosts/sshConfig";
import { sshLoginDefaults } from "./lib/sshLogin";
import { checkIpv4, cidrContains, formatCidr, formatIp, lastAddress, notUnicast, parseCidr, parseIp } from "./lib/inet";
import { checkHostName, checkInt, checkPort, parseBool, throwIfInvalid, FouInputError } from "./lib/validate";
import {
    DEFAULT_PORT,
    DEFAULT_UNDERLAY,
    GUIDE_GWIPS,
    GUIDE_HOSTS,
    Topology,
    TopologyHost,
    defaultHostAddress,
    defaultUnderlay,
    guideTopology,
    loadTopology,
} from "./topology";

export interface Settings {
    readonly hosts: "local" | "aws" | "ssh";
    /** false keeps the hosts but removes every tunnel component (and restores the hosts). */
    readonly tunnel: boolean;
    /** Hosts and tunnels: the file named by `topology`, else the guide's k1/k2 from port/gwips/localVms. */
    readonly topology: Topology;
    readonly check: boolean;
    /** Hosts whose tunnel objects are forgotten, not undone, when removed (they are unreachable). */
    readonly forgetHosts: string[];
    /** Seconds one SSH dial to a host may take (`connection.perDialTimeout`); unset: the host kind's. */
    readonly sshDialTimeout?: number;
    readonly local: LocalSettings;
    /** Set when hosts is "aws". */
    readonly aws?: AwsSettings;
    /** Set when hosts is "ssh": the machines of the topology file, each logging in with the stack's key or agent. */
    readonly ssh?: SshSettings;
}

/** The guide's two hosts on the default bridge (topology/defaults.ts): k1 .151, k2 .152, this machine .1/24. */
export const DEFAULT_LOCAL: LocalSettings = {
    gateway: DEFAULT_UNDERLAY,
    vms: GUIDE_HOSTS.map((name, i) => ({ name, address: formatIp(defaultHostAddress(defaultUnderlay(), i)), fou: true })),
    memoryMb: 384,
};

/** Keys whose value is read as it is (never JSON), without the SDK's warning about reading a secret. */
const RAW_KEYS = ["sshPrivateKey"];

/** Reads the stack configuration; throws one error listing every bad key before anything is declared. */
export function loadSettings(cfg: pulumi.Config): Settings {
    // Internal to the SDK, so optional: whether a key was set with --secret.
    const isSecret = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    const env: SshEnvironment = {
        sshAuthSock: process.env.SSH_AUTH_SOCK,
        isSocket: (p) => {
            try {
                return statSync(p).isSocket();
            } catch {
                return false;
            }
        },
        ...(isSecret ? { isSecret: (k: string) => isSecret(k) } : {}),
    };
    return parseSettings((key) => {
        if (RAW_KEYS.includes(key)) {
            return pulumi.runtime.getConfig(`${cfg.name}:${key}`);
        }
        const raw = cfg.get(key);
        if (raw === undefined) {
            return undefined;
        }
        try {
            return JSON.parse(raw) as unknown;
        } catch {
            return raw; // a plain string value
        }
    }, cfg.name, env);
}

/** Parses settings from a key lookup (pure, for tests). `ns` prefixes keys in messages. */
export function parseSettings(get: (key: string) => unknown, ns = "fou-tunnel", env: SshEnvironment = {}): Settings {
    const key = (k: string) => `${ns}:${k}`;
    const problems: (string | undefined)[] = [];

    const hosts = get("hosts") ?? "local";
    if (hosts !== "local" && hosts !== "aws" && hosts !== "ssh") {
        problems.push(`${key("hosts")} must be "local", "aws" or "ssh" (got ${JSON.stringify(hosts)})`);
    }
    const credentials = hosts === "ssh" ? parseSshCredentials(get, ns, env, problems) : undefined;
    if (hosts !== "ssh") {
        const sshOnly = ["sshPrivateKey", "sshAgentSocket"].filter((k) => get(k) !== undefined);
        if (sshOnly.length > 0) {
            problems.push(`${sshOnly.map(key).join(", ")} ${sshOnly.length > 1 ? "apply" : "applies"} to ${key("hosts")} ssh only; ${hosts} hosts are reached with a key the stack makes`);
        }
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
    const sshDialTimeout = get("sshDialTimeout") === undefined ? undefined : num(get("sshDialTimeout"));
    if (sshDialTimeout !== undefined) {
        problems.push(checkInt(key("sshDialTimeout"), sshDialTimeout, 1, 300));
    }

    const topologyPath = get("topology");
    const legacy = ["port", "gwips", "localVms", "firewall"].filter((k) => get(k) !== undefined);
    let topology: Topology | undefined;
    let local: LocalSettings | undefined;
    if (topologyPath !== undefined) {
        // A file names the hosts and tunnels; the guide's two-host keys would contradict it.
        if (legacy.length > 0) {
            problems.push(`${legacy.map(key).join(", ")} cannot be combined with ${key("topology")}: set ${legacy.length > 1 ? "them" : "it"} in the topology file`);
        }
        const base = hosts === "local" ? parseLocal(get, key, problems, false) : undefined;
        if (typeof topologyPath !== "string" || topologyPath.trim() === "") {
            // Relative paths are from the project directory, where pulumi runs the program.
            problems.push(`${key("topology")} must be the path of a topology YAML file, relative to the project directory (got ${JSON.stringify(topologyPath)})`);
        } else if (hosts === "local" || hosts === "aws" || hosts === "ssh") {
            topology = collect(problems, () =>
                loadTopology(topologyPath, { kind: hosts, ...(base ? { underlay: base.gateway } : {}) }),
            );
        }
        if (base && topology) {
            local = { ...base, vms: topology.hosts.map((h) => ({ name: h.name, address: h.address as string, fou: h.fou })) };
        }
    } else if (hosts === "ssh") {
        problems.push(
            `${key("hosts")} ssh needs ${key("topology")}: a topology file whose hosts say how to log in to each machine, like {name: k1, ssh: {address: 198.51.100.151, hostKey: ssh-ed25519 AAAA…}} (docs/topology.md)`,
        );
    } else {
        ({ topology, local } = parseGuide(get, key, problems, hosts, ns));
    }
    const forgetHosts = get("forgetHosts") ?? [];
    if (!Array.isArray(forgetHosts) || forgetHosts.some((h) => typeof h !== "string")) {
        problems.push(`${key("forgetHosts")} must be a list of host names (got ${JSON.stringify(forgetHosts)})`);
    } else if (topology) {
        const known = new Set(topology.hosts.map((h) => h.name));
        for (const h of forgetHosts) {
            if (!known.has(h)) problems.push(`${key("forgetHosts")} names ${JSON.stringify(h)}, which is not a host of ${topology.source}`);
        }
    }
    throwIfInvalid(problems);
    const ssh = credentials && topology ? { hosts: topology.hosts.map((h) => sshHostOf(h, credentials, sshDialTimeout as number | undefined)) } : undefined;
    return {
        forgetHosts: forgetHosts as string[],
        hosts: hosts as "local" | "aws" | "ssh",
        ...(aws ? { aws } : {}),
        ...(ssh ? { ssh } : {}),
        tunnel,
        check,
        ...(sshDialTimeout === undefined ? {} : { sshDialTimeout: sshDialTimeout as number }),
        topology: topology as Topology,
        local: local ?? DEFAULT_LOCAL,
    };
}

/**
 * The guide without a topology file: two hosts and one tunnel from the stack's own keys (port,
 * gwips, localVms), checked under those keys and mapped to the model directly. The rules are a
 * topology file's for the same values.
 */
function parseGuide(
    get: (key: string) => unknown,
    key: (k: string) => string,
    problems: (string | undefined)[],
    hosts: unknown,
    ns: string,
): { topology?: Topology; local?: LocalSettings } {
    const port = num(get("port") ?? DEFAULT_PORT);
    problems.push(checkPort(key("port"), port));
    const gwips = get("gwips") ?? [...GUIDE_GWIPS];
    if (!Array.isArray(gwips) || gwips.length !== 2) {
        problems.push(`${key("gwips")} must be a list of two IPv4 addresses, one per host (got ${JSON.stringify(gwips)})`);
    } else {
        gwips.forEach((g, i) => problems.push(checkGwip(`${key("gwips")}[${i}]`, g)));
        if (gwips[0] === gwips[1]) {
            problems.push(`${key("gwips")} gives both hosts ${gwips[0]}; each host needs its own GWIP`);
        }
    }
    const local = hosts === "aws" ? undefined : parseLocal(get, key, problems, true);
    if (local && Array.isArray(gwips)) {
        const lan = parseCidr(local.gateway, true);
        gwips.forEach((g, i) => {
            const ip = parseIp(g);
            if (lan && ip?.family === 4 && cidrContains(lan, ip)) {
                problems.push(`${key("gwips")}[${i}] ${g} lies in the underlay network ${local.gateway}; GWIPs must be outside it`);
            }
        });
    }
    if (problems.some((p) => p !== undefined) || (hosts !== "local" && hosts !== "aws")) {
        return { local };
    }
    const vms = local?.vms ?? DEFAULT_LOCAL.vms;
    const host = (v: LocalVmSettings): TopologyHost => (local ? { name: v.name, address: v.address, fou: v.fou } : { name: v.name, fou: true });
    const topology = guideTopology({
        source: `${ns} stack settings (the guide's two hosts)`,
        hosts: [host(vms[0]), host(vms[1])],
        port: port as number,
        gwips: [(gwips as string[])[0], (gwips as string[])[1]],
        firewall: parseBool(get("firewall"), true, key("firewall"), problems),
    });
    return { topology, local };
}

/**
 * A host of an ssh topology, as hosts/ssh.ts takes it: the file's login (the parser has filled
 * every value) joined by the stack's key, agent and dial timeout, which reach its jump host too.
 */
function sshHostOf(h: TopologyHost, credentials: SshCredentials, perDialTimeout: number | undefined): SshHostSettings {
    if (!h.ssh || h.address === undefined) {
        throw new Error(`topology: host ${h.name} has no ssh login after validation`);
    }
    const { sudo, ...login } = h.ssh;
    const dials = perDialTimeout === undefined ? login.dials : { ...login.dials, perDialTimeout };
    return {
        name: h.name,
        ...sshLoginDefaults({ ...login, ...credentials, dials }),
        sudo,
        underlayAddress: h.address,
        ...(h.device === undefined ? {} : { device: h.device }),
    };
}

/** A GWIP of the guide: a unicast IPv4 address (not in 0.0.0.0/8 either, as in a topology file). */
function checkGwip(key: string, value: unknown): string | undefined {
    const bad = checkIpv4(key, value);
    const special = bad === undefined ? notUnicast(parseIp(value)!) : undefined;
    return special ? `${key} ${String(value)} is ${special}; a GWIP must be a unicast address` : bad;
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
    problems.push(checkInt(key("localVmMemory"), memoryMb, 256, 8192));
    const written = parseCidr(gateway);
    const lan = written?.family === 4 ? written : undefined;
    if (lan === undefined || lan.length < 8 || lan.length > 30) {
        problems.push(`${key("localGateway")} must be this machine's address on the VM network with its length, like ${DEFAULT_UNDERLAY} (got ${JSON.stringify(gateway)})`);
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
            } else if (ip.value === lan.network) {
                problems.push(`${at}.address ${o.address} is the address of the VM network ${formatCidr(lan)} itself; VMs need a host address`);
            } else if (ip.value === lastAddress(lan)) {
                problems.push(`${at}.address ${o.address} is the broadcast address of the VM network ${formatCidr(lan)}`);
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
