import { statSync } from "fs";
import * as pulumi from "@pulumi/pulumi";
import { AwsSettings, parseAwsSettings } from "./hosts/awsConfig";
import { LocalSettings, LocalVmSettings } from "./hosts/localConfig";
import { SshCredentials, SshEnvironment, SshHostSettings, SshSettings, parseSshCredentials } from "./hosts/sshConfig";
import { sshLoginDefaults } from "./lib/sshLogin";
import { checkInt, parseBool, throwIfInvalid, FouInputError } from "./lib/validate";
import { Topology, TopologyHost, loadTopology } from "./topology";
import { DEFAULT_LOCAL, num, parseLocal } from "./configLocal";
import { parseGuide } from "./configGuide";
import { ConfigReader, configReader } from "./configReader";

export { DEFAULT_LOCAL } from "./configLocal";

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
    const reader = configReader(get, ns);
    const { key, problems, hosts } = reader;
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
    const aws = hosts === "aws" ? collect(problems, () => parseAwsSettings(get, ns)) : undefined;
    const tunnel = parseBool(get("tunnel"), true, key("tunnel"), problems);
    const check = parseBool(get("check"), true, key("check"), problems);
    const sshDialTimeout = get("sshDialTimeout") === undefined ? undefined : num(get("sshDialTimeout"));
    if (sshDialTimeout !== undefined) {
        problems.push(checkInt(key("sshDialTimeout"), sshDialTimeout, 1, 300));
    }
    const { topology, local } = parseTopologyKeys(reader);
    const forgetHosts = parseForgetHosts(get("forgetHosts"), key("forgetHosts"), problems, topology);
    throwIfInvalid(problems);
    const ssh = credentials && topology ? { hosts: topology.hosts.map((h) => sshHostOf(h, credentials, sshDialTimeout as number | undefined)) } : undefined;
    return {
        forgetHosts,
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
 * The topology and the local VMs: from the file `topology` names (the guide's keys would
 * contradict it), else, but for ssh hosts, which need a file, from the guide's keys.
 */
function parseTopologyKeys(reader: ConfigReader): { topology?: Topology; local?: LocalSettings } {
    const { get, key, problems, hosts } = reader;
    const topologyPath = get("topology");
    if (topologyPath === undefined) {
        if (hosts === "ssh") {
            problems.push(
                `${key("hosts")} ssh needs ${key("topology")}: a topology file whose hosts say how to log in to each machine, like {name: k1, ssh: {address: 198.51.100.151, hostKey: ssh-ed25519 AAAA…}} (docs/topology.md)`,
            );
            return {};
        }
        return parseGuide(reader);
    }
    const legacy = ["port", "gwips", "localVms", "firewall"].filter((k) => get(k) !== undefined);
    if (legacy.length > 0) {
        problems.push(`${legacy.map(key).join(", ")} cannot be combined with ${key("topology")}: set ${legacy.length > 1 ? "them" : "it"} in the topology file`);
    }
    const base = hosts === "local" ? parseLocal(reader, false) : undefined;
    let topology: Topology | undefined;
    if (typeof topologyPath !== "string" || topologyPath.trim() === "") {
        // Relative paths are from the project directory, where pulumi runs the program.
        problems.push(`${key("topology")} must be the path of a topology YAML file, relative to the project directory (got ${JSON.stringify(topologyPath)})`);
    } else if (hosts === "local" || hosts === "aws" || hosts === "ssh") {
        topology = collect(problems, () => loadTopology(topologyPath, { kind: hosts, ...(base ? { underlay: base.gateway } : {}) }));
    }
    const local = base && topology ? { ...base, vms: topology.hosts.map((h) => ({ name: h.name, address: h.address as string, fou: h.fou, ...localUnderlay6(topology!, h) })) } : undefined;
    return { topology, local };
}

/** A local VM's IPv6 underlay, when the topology gives it one: put back at boot when one of its tunnels persists. */
function localUnderlay6(topology: Topology, h: TopologyHost): Pick<LocalVmSettings, "underlay6" | "underlay6Persist"> {
    if (h.underlayAddress === undefined) return {};
    const persist = topology.tunnels.some((t) => t.persist && t.ends.some((e) => e.host === h.name));
    return { underlay6: h.underlayAddress, ...(persist ? { underlay6Persist: true } : {}) };
}

/** `forgetHosts`: a list of the topology's host names. */
function parseForgetHosts(value: unknown, name: string, problems: (string | undefined)[], topology: Topology | undefined): string[] {
    const forgetHosts = value ?? [];
    if (!Array.isArray(forgetHosts) || forgetHosts.some((h) => typeof h !== "string")) {
        problems.push(`${name} must be a list of host names (got ${JSON.stringify(forgetHosts)})`);
    } else if (topology) {
        const known = new Set(topology.hosts.map((h) => h.name));
        for (const h of forgetHosts) {
            if (!known.has(h)) problems.push(`${name} names ${JSON.stringify(h)}, which is not a host of ${topology.source}`);
        }
    }
    return forgetHosts as string[];
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
