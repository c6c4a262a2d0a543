import { Ip, checkUnderlay, formatIp, parseIp } from "../lib/inet";
import { hostKeyHint, normalizeHostKey } from "../lib/ssh";
import { FullSshLogin, LoginRole, SSH_PORT, SshJump, checkLoginField, endpointOf, jumpDefaults, requiredReason, selfProxyProblem, sshLoginDefaults, sudoByDefault } from "../lib/sshLogin";
import { checkIfname } from "../lib/validate";
import type { TopologySsh } from "./model";
import type { Context } from "./records";
import { PROXY_KEYS, SSH_KEYS, checkKeys, readBool } from "./schema";
import { Report, YMap, got, str } from "./yaml";

/**
 * The hosts of an ssh stack: machines that exist already. Each says how to log in (`ssh:` with
 * address, port, user, the host key to pin, sudo, and a jump host `proxy:`), and may give its
 * underlay address and device. Secrets never go in the file: the private key is a secret of the
 * stack (`fou-tunnel:sshPrivateKey`) or lives in an SSH agent.
 */

/** What the file may not hold, with where it goes instead. */
export function secretKeyMessage(key: string): string | undefined {
    if (["privateKey", "password", "privateKeyPassword", "passphrase", "key"].includes(key)) {
        return "not allowed in a topology file: keys and passwords are secrets; set the private key with `pulumi config set --secret fou-tunnel:sshPrivateKey < KEYFILE`, or load it into an SSH agent";
    }
    if (key === "agentSocketPath" || key === "agent") {
        return "not allowed in a topology file: the agent belongs to the machine that runs pulumi; set fou-tunnel:sshAgentSocket, or just SSH_AUTH_SOCK";
    }
    return undefined;
}

/** Who already uses an underlay address or a login, for messages. */
export interface SshOwners {
    /** By `family/value`. */
    readonly underlay: Map<string, { name: string; line: number }>;
    readonly login: Map<string, { name: string; line: number }>;
}

export interface SshHostRead {
    readonly ssh?: TopologySsh;
    readonly underlay?: Ip;
    readonly device?: string;
}

/** An ssh host's `ssh:` block, underlay address and device; every problem reported at its node. */
export function readSshHost(cx: Context, item: YMap, path: string, name: string | undefined, owners: SshOwners): SshHostRead {
    const { r } = cx;
    const label = name ?? path;
    const e = item.entries.get("ssh");
    const device = readDevice(r, item, path);
    if (!e) {
        r.add(item.pos, `${path}.ssh`, "required on ssh stacks: how to log in, like {address: 198.51.100.151, hostKey: ssh-ed25519 AAAA…}");
        return { device };
    }
    if (e.value.kind !== "map") {
        r.add(e.value.pos, `${path}.ssh`, `must be a mapping like {address: 198.51.100.151, hostKey: ssh-ed25519 AAAA…} (got ${got(e.value)})`);
        return { device };
    }
    const m = e.value;
    const at = `${path}.ssh`;
    checkKeys(r, m, at, "ssh", SSH_KEYS, secretKeyMessage);
    const user = readUser(r, m, at);
    const proxy = readProxy(r, m, at);
    let loginTaken = false;
    const via = proxy ? jumpDefaults(proxy, { user: user ?? undefined }) : undefined;
    const read = readLogin(r, m, at, "host", via);
    const login = user !== null && proxy !== null ? complete({ ...read, ...(user === undefined ? {} : { user }) }, proxy) : undefined;
    const sudo = readSudo(r, m, at, user);
    if (read.address !== undefined && read.port !== null) {
        const port = read.port ?? SSH_PORT;
        const pe = m.entries.get("proxy");
        if (via) {
            r.check(pe!.value.pos, `${at}.proxy`, selfProxyProblem({ address: read.address, port, proxy: via }, `${at}.proxy`));
        }
        const key = `${via ? `${via.address.toLowerCase()}:${via.port}>` : ""}${read.address.toLowerCase()}:${port}`;
        const first = owners.login.get(key);
        const pos = m.entries.get("address")!.value.pos;
        loginTaken = first !== undefined;
        if (first) {
            r.add(pos, `${at}.address`, `${first.name} (line ${first.line}) already logs in at ${read.address} port ${port}; the hosts of a file are different machines`);
        } else {
            owners.login.set(key, { name: label, line: r.line(pos) });
        }
    }
    // A second login at the same address is reported once, not again as its default underlay address.
    const underlay = loginTaken && !item.entries.has("underlayAddress") ? undefined : readUnderlay(cx, item, path, read.address, m, label, owners);
    // Addresses the tunnels must keep clear of: the underlay, the SSH path (host and jump host).
    const line = r.line(item.pos);
    const reserve = (ip: Ip | undefined, what: string) => {
        if (ip && !cx.hostAddresses.some((h) => h.ip.family === ip.family && h.ip.value === ip.value)) {
            cx.hostAddresses.push({ ip, what: `${what} (line ${line})` });
        }
    };
    reserve(underlay, `the underlay address of ${label}`);
    reserve(parseIp(read.address), `the SSH address of ${label}`);
    reserve(parseIp(proxy?.address), `the address of ${label}'s jump host`);
    if (!login || sudo === undefined || proxy === null) {
        return { underlay, device };
    }
    return { ssh: { ...login, sudo }, underlay, device };
}

/** The user as written: undefined when absent (defaulted later), null when invalid (reported). */
function readUser(r: Report, m: YMap, at: string): string | undefined | null {
    const e = m.entries.get("user");
    if (!e) {
        return undefined;
    }
    const v = e.value.kind === "scalar" ? e.value.value : got(e.value);
    return r.check(e.value.pos, `${at}.user`, checkLoginField("user", `${at}.user`, v)) ? (v as string) : null;
}

/** address, port (null: invalid) and hostKey as written; undefined when missing or invalid (reported). */
interface Read {
    readonly address?: string;
    readonly port?: number | null;
    readonly hostKey?: string;
}

/** The login when every part of it is valid, with every default filled in by the login model. */
function complete(l: Read & { user?: string }, proxy?: SshJump<never>): FullSshLogin<never> | undefined {
    if (l.address === undefined || l.port === null || l.hostKey === undefined) {
        return undefined;
    }
    const { address, port, user, hostKey } = l;
    return sshLoginDefaults<never>({ address, hostKey, ...(port === undefined ? {} : { port }), ...(user === undefined ? {} : { user }), ...(proxy ? { proxy } : {}) });
}

/**
 * address, port and hostKey of a login (the user is read beforehand), each checked by the login
 * model's own checks at its node; undefined when missing or invalid (reported), port null when invalid.
 */
function readLogin(r: Report, m: YMap, at: string, role: LoginRole, via?: SshJump<never>): Read {
    let address: string | undefined;
    const a = m.entries.get("address");
    if (!a) {
        r.add(m.pos, `${at}.address`, `required: ${requiredReason("address", role)}`);
    } else {
        const v = a.value.kind === "scalar" ? a.value.value : got(a.value);
        if (r.check(a.value.pos, `${at}.address`, checkLoginField("address", `${at}.address`, v, role))) {
            address = v as string;
        }
    }
    let port: number | undefined | null;
    const p = m.entries.get("port");
    if (p) {
        const v = p.value.kind === "scalar" ? p.value.value : got(p.value);
        port = r.check(p.value.pos, `${at}.port`, checkLoginField("port", `${at}.port`, v, role)) ? (v as number) : null;
    }
    const endpoint = endpointOf({ address, port: port ?? undefined }, "ADDRESS", via);
    let hostKey: string | undefined;
    const k = m.entries.get("hostKey");
    if (!k) {
        r.add(m.pos, `${at}.hostKey`, `required: ${requiredReason("hostKey", role, endpoint)}`);
    } else {
        const v = str(k.value);
        hostKey = normalizeHostKey(v);
        if (v === undefined) {
            r.add(k.value.pos, `${at}.hostKey`, `must be a public key line like "ssh-ed25519 AAAA…" (got ${got(k.value)}); ${hostKeyHint(endpoint)}`);
        } else if (hostKey === undefined) {
            r.check(k.value.pos, `${at}.hostKey`, checkLoginField("hostKey", `${at}.hostKey`, v, role, endpoint));
        }
    }
    return { address, port, hostKey };
}

/** The jump host as written (defaults not filled in): undefined when there is none, null when it is invalid (reported). */
function readProxy(r: Report, m: YMap, at: string): SshJump<never> | undefined | null {
    const e = m.entries.get("proxy");
    if (!e) {
        return undefined;
    }
    const path = `${at}.proxy`;
    if (e.value.kind !== "map") {
        r.add(e.value.pos, path, `must be a mapping like {address: 192.0.2.10, hostKey: ssh-ed25519 AAAA…}: the jump host (got ${got(e.value)})`);
        return null;
    }
    checkKeys(r, e.value, path, "proxy", PROXY_KEYS, (key) =>
        key === "proxy"
            ? "a jump host cannot have a proxy of its own: the connection goes through one jump host at most"
            : key === "sudo"
              ? "sudo applies to the host's steps; the jump host only forwards the connection"
              : secretKeyMessage(key),
    );
    const user = readUser(r, e.value, path);
    const read = readLogin(r, e.value, path, "jump host");
    return user !== null && read.address !== undefined && read.port !== null && read.hostKey !== undefined
        ? { address: read.address, ...(read.port === undefined ? {} : { port: read.port }), ...(user === undefined ? {} : { user }), hostKey: read.hostKey }
        : null;
}

/** sudo as written, else the login model's default for the user; undefined when invalid (reported). */
function readSudo(r: Report, m: YMap, at: string, user: string | undefined | null): boolean | undefined {
    const e = m.entries.get("sudo");
    if (!e) {
        return sudoByDefault(user ?? undefined);
    }
    const b = readBool(e.value);
    if ("error" in b) {
        r.add(e.value.pos, `${at}.sudo`, b.error);
        return undefined;
    }
    if (!b.value && typeof user === "string" && sudoByDefault(user)) {
        r.add(e.value.pos, `${at}.sudo`, `is false, but user ${user} is not root: the steps need root (modprobe, sysctl, ip, files in /etc); remove sudo: false, or log in as root`);
        return undefined;
    }
    return b.value;
}

/** underlayAddress as written, else the SSH address when it is an IP address; unique in the file. */
function readUnderlay(cx: Context, item: YMap, path: string, sshAddress: string | undefined, ssh: YMap, label: string, owners: SshOwners): Ip | undefined {
    const { r } = cx;
    const e = item.entries.get("underlayAddress");
    let ip: Ip | undefined;
    let pos: number;
    let what: string;
    if (e) {
        pos = e.value.pos;
        const v = e.value.kind === "scalar" ? e.value.value : got(e.value);
        if (!r.check(pos, `${path}.underlayAddress`, checkUnderlay(`${path}.underlayAddress`, v))) {
            return undefined;
        }
        ip = parseIp(v)!;
        what = formatIp(ip);
    } else {
        if (sshAddress === undefined) {
            return undefined; // invalid or missing, reported
        }
        pos = ssh.entries.get("address")!.value.pos;
        const parsed = parseIp(sshAddress);
        if (!parsed) {
            r.add(
                item.pos,
                `${path}.underlayAddress`,
                `required when ssh.address is a DNS name (${sshAddress}): the IPv4 or IPv6 address the host's peers send the tunnel to`,
            );
            return undefined;
        }
        const bad = checkUnderlay(`${path}.ssh.address`, sshAddress);
        if (bad) {
            r.check(pos, `${path}.ssh.address`, `${bad}; it is the default underlay address: set underlayAddress`);
            return undefined;
        }
        ip = parsed;
        what = `${sshAddress} (ssh.address, the default underlay address)`;
    }
    const first = owners.underlay.get(`${ip.family}/${ip.value}`);
    if (first) {
        r.add(pos, `${path}.underlayAddress`, `${what} is already the underlay address of ${first.name} (line ${first.line}); each host needs its own`);
        return undefined;
    }
    owners.underlay.set(`${ip.family}/${ip.value}`, { name: label, line: r.line(pos) });
    return ip;
}

function readDevice(r: Report, item: YMap, path: string): string | undefined {
    const e = item.entries.get("device");
    if (!e) {
        return undefined;
    }
    const v = e.value.kind === "scalar" ? e.value.value : got(e.value);
    return r.check(e.value.pos, `${path}.device`, checkIfname(`${path}.device`, v)) ? str(e.value) : undefined;
}
