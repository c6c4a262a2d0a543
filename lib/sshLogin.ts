import type * as pulumi from "@pulumi/pulumi";
import { SshEndpoint, checkHostKey, checkSshAddress, checkSshPort, checkSshUser, hostKeyHint, normalizeHostKey } from "./ssh";
import { checkInt } from "./validate";

/**
 * The SSH login model: one type for how the program logs in to a machine (a topology file's ssh
 * host, the ssh host fleet, the SshHost component), with its defaults and its checks in this one
 * file. The private key is only ever held as a secret Output, so no plain copy of it can reach a
 * resource input, an output or a message.
 */

/** Dials per command, and seconds per dial. */
export interface SshDials {
    readonly dialErrorLimit: number;
    readonly perDialTimeout: number;
}

/**
 * The dials of every kind of host: a machine that is up answers the first dial (a VM's start
 * and an EC2 host's poll wait for sshd), so a few are enough, and a dead one fails a step in
 * about a minute instead of hanging the deployment.
 */
export const SSH_DIALS: SshDials = Object.freeze({ dialErrorLimit: 5, perDialTimeout: 10 });

/** The port of a login that names none. */
export const SSH_PORT = 22;
/** The user of a host's login that names none (a jump host's: the host's user). */
export const SSH_USER = "root";

/**
 * One SSH login: the machine, how it proves who it is, how the program proves who it is, and
 * the jump host in front of it. `Key` is how the private key is held: a secret Output in the
 * program; a plain string only inside the apply that builds the connection.
 */
export interface SshLogin<Key = pulumi.Output<string>> {
    /** Address or DNS name; of a host behind a jump host, as the jump host reaches it. */
    readonly address: string;
    /** Default {@link SSH_PORT}. */
    readonly port?: number;
    /** Default {@link SSH_USER}; a jump host's: the host's user. */
    readonly user?: string;
    /**
     * The machine's SSH public key, pinned: `ssh-ed25519 AAAA…` (a comment may follow, and a line
     * of `ssh-keyscan` output is taken as well). Required: without it any machine could pose as
     * the host and be sent every script.
     */
    readonly hostKey: string;
    /** OpenSSH or PEM private key; with neither key nor agent, the command plugin uses `SSH_AUTH_SOCK`. A jump host's: the host's. */
    readonly privateKey?: Key;
    /** An SSH agent's socket, used in addition to the key. A jump host's: the host's. */
    readonly agentSocketPath?: string;
    /** A jump host the connection goes through: one at most, so it has no proxy (nor dials) of its own. */
    readonly proxy?: SshJump<Key>;
    /** Of the host and its jump host alike; default {@link SSH_DIALS}. */
    readonly dials?: Partial<SshDials>;
}

/** A jump host's login: an SshLogin without a proxy or dials of its own. */
export type SshJump<Key = pulumi.Output<string>> = Omit<SshLogin<Key>, "proxy" | "dials">;

/** A login with every default filled in ({@link sshLoginDefaults}). */
export type FullSshLogin<Key = pulumi.Output<string>> = SshLogin<Key> & {
    readonly port: number;
    readonly user: string;
    readonly dials: SshDials;
    readonly proxy?: SshJump<Key> & { readonly port: number; readonly user: string };
};

/**
 * An SshLogin as a component takes it: each value may be a Pulumi Input (checked once it
 * resolves), the private key a plain string or a secret.
 */
export type SshLoginArgs = {
    readonly [K in keyof Omit<SshLogin<string>, "proxy" | "dials">]: pulumi.Input<SshLogin<string>[K]>;
} & {
    readonly proxy?: { readonly [K in keyof SshJump<string>]: pulumi.Input<SshJump<string>[K]> };
    readonly dials?: Partial<SshDials>;
};

/** The defaults filled in: port, user, dials; a jump host's port, and user, key and agent from the host. */
export function sshLoginDefaults<Key>(l: SshLogin<Key>): FullSshLogin<Key> {
    const { proxy, ...host } = l;
    const full = { ...host, port: l.port ?? SSH_PORT, user: l.user ?? SSH_USER, dials: { ...SSH_DIALS, ...l.dials } };
    return proxy ? { ...full, proxy: jumpDefaults(proxy, l) } : full;
}

/** A jump host's defaults: port {@link SSH_PORT}; the user, key and agent of the host behind it. */
export function jumpDefaults<Key>(j: SshJump<Key>, host: Pick<SshLogin<Key>, "user" | "privateKey" | "agentSocketPath">): SshJump<Key> & { port: number; user: string } {
    return {
        ...j,
        port: j.port ?? SSH_PORT,
        user: jumpUser(j.user, host.user) as string,
        ...(j.privateKey === undefined && host.privateKey !== undefined ? { privateKey: host.privateKey } : {}),
        ...(j.agentSocketPath === undefined && host.agentSocketPath !== undefined ? { agentSocketPath: host.agentSocketPath } : {}),
    };
}

/** A jump host's user: its own, else the host's, else {@link SSH_USER}. */
function jumpUser(own: unknown, host: unknown): unknown {
    return own ?? host ?? SSH_USER;
}

/** Whether a host's steps go through `sudo -n` when nothing says: when its user is not root. */
export function sudoByDefault(user: string | undefined): boolean {
    return (user ?? SSH_USER) !== "root";
}

/** What a login's fields are called in messages: `hosts[0].ssh.port`, `SshHost k1: port`. */
export type FieldKey = (field: string) => string;

/** Which machine a login is: words for messages. */
export type LoginRole = "host" | "jump host";

/** A value that is not known yet (an unresolved Output): checked once it is. */
export const NOT_KNOWN = Symbol("not known yet");

/** A login's fields as written, unchecked; absent ones undefined, unresolved ones {@link NOT_KNOWN}. */
export interface SshLoginDraft {
    readonly address?: unknown;
    readonly port?: unknown;
    readonly user?: unknown;
    readonly hostKey?: unknown;
    readonly dials?: unknown;
    readonly proxy?: SshLoginDraft;
}

/** Why a required field is needed, with how to get it; the caller frames it (`is required: …`, `required: …`). */
export function requiredReason(field: "address" | "hostKey", role: LoginRole, e: SshEndpoint = { address: "ADDRESS" }): string {
    return field === "address"
        ? `the ${role}'s IP address or DNS name, like ${role === "host" ? "198.51.100.151" : "192.0.2.10"}`
        : `the ${role}'s SSH public key, pinned so that no other machine can pose as it; ${hostKeyHint(e)}`;
}

/** One field of a login as written, named `key`: undefined when valid (or not known yet, or defaulted). */
export function checkLoginField(
    field: "address" | "port" | "user" | "hostKey",
    key: string,
    value: unknown,
    role: LoginRole = "host",
    e: SshEndpoint = { address: "ADDRESS" },
): string | undefined {
    if (value === NOT_KNOWN) {
        return undefined;
    }
    const missing = value === undefined || value === null || value === "";
    switch (field) {
        case "address":
            return missing ? `${key} is required: ${requiredReason(field, role, e)}` : checkSshAddress(key, value);
        case "hostKey":
            return missing ? `${key} is required: ${requiredReason(field, role, e)}` : checkHostKey(key, value, e);
        case "port":
            return value === undefined ? undefined : checkSshPort(key, value);
        case "user":
            return value === undefined ? undefined : checkSshUser(key, value);
    }
}

/** Where a draft goes, for the hint of how to get its host key (unknown parts written as placeholders). */
export function endpointOf(d: SshLoginDraft, placeholder: string, via?: SshLoginDraft): SshEndpoint {
    const known = (v: unknown) => (v === NOT_KNOWN ? undefined : v);
    const port = typeof known(d.port) === "number" ? (d.port as number) : undefined;
    const proxy = via && typeof known(via.address) === "string" ? endpointOf(via, "PROXY") : undefined;
    const user = via && typeof known(via.user) === "string" ? (via.user as string) : undefined;
    return {
        address: typeof known(d.address) === "string" && d.address !== "" ? (d.address as string) : placeholder,
        port,
        ...(proxy ? { proxy: { address: proxy.address, port: proxy.port, ...(user ? { user } : {}) } } : {}),
    };
}

/**
 * Every problem with a login as written, each naming its field through `key`: address, port,
 * user, host key, dials, and the jump host's own (which must be another machine).
 */
export function sshLoginProblems(d: SshLoginDraft, key: FieldKey): string[] {
    const via = d.proxy && { ...d.proxy, user: jumpUser(d.proxy.user, d.user) };
    const problems = [
        ...fieldProblems(d, key, "host", endpointOf(d, "HOST", via)),
        ...dialProblems(d.dials, key),
        ...(d.proxy ? fieldProblems(d.proxy, (f) => key(`proxy.${f}`), "jump host", endpointOf(d.proxy, "PROXY")) : []),
        ...(d.proxy ? [selfProxyProblem(d, key("proxy"))] : []),
    ];
    return problems.filter((p): p is string => p !== undefined);
}

function fieldProblems(d: SshLoginDraft, key: FieldKey, role: LoginRole, e: SshEndpoint): (string | undefined)[] {
    return (["user", "address", "port", "hostKey"] as const).map((f) => checkLoginField(f, key(f), d[f], role, e));
}

function dialProblems(dials: unknown, key: FieldKey): (string | undefined)[] {
    if (dials === undefined || dials === NOT_KNOWN) {
        return [];
    }
    const d = (typeof dials === "object" && dials !== null ? dials : {}) as Partial<Record<keyof SshDials, unknown>>;
    return [
        d.dialErrorLimit === undefined ? undefined : checkInt(key("dials.dialErrorLimit"), d.dialErrorLimit, -1, 1000),
        d.perDialTimeout === undefined ? undefined : checkInt(key("dials.perDialTimeout"), d.perDialTimeout, 1, 300),
    ];
}

/** A jump host at the host's own address and port: the host itself, which cannot be its own way in. */
export function selfProxyProblem(d: SshLoginDraft, key: string): string | undefined {
    const p = d.proxy;
    const port = (v: unknown) => (v === undefined ? SSH_PORT : v);
    if (!p || typeof p.address !== "string" || p.address !== d.address || port(p.port) !== port(d.port)) {
        return undefined;
    }
    return `${key} is the host itself (${p.address} port ${String(port(p.port))}); a jump host is another machine`;
}

/**
 * A resolved login, checked (every problem at once) and with every default filled in and its
 * host keys in the command plugin's form. `key` names the fields in messages.
 */
export function resolveSshLogin<Key>(l: SshLogin<Key>, key: FieldKey): { login?: FullSshLogin<Key>; problems: string[] } {
    const problems = sshLoginProblems(l, key);
    if (problems.length > 0) {
        return { problems };
    }
    const full = sshLoginDefaults(l);
    const pin = (k: string) => normalizeHostKey(k) as string; // checked above
    return { login: { ...full, hostKey: pin(full.hostKey), ...(full.proxy ? { proxy: { ...full.proxy, hostKey: pin(full.proxy.hostKey) } } : {}) }, problems };
}

/** The command plugin's connection (its `ConnectionArgs` shape) for a full login, inside an apply. */
export function sshConnection(l: FullSshLogin<string>): SshConnection {
    const one = (j: SshJump<string> & { port: number; user: string }) => ({
        host: j.address,
        port: j.port,
        user: j.user,
        hostKey: j.hostKey,
        ...(j.privateKey === undefined ? {} : { privateKey: j.privateKey }),
        ...(j.agentSocketPath === undefined ? {} : { agentSocketPath: j.agentSocketPath }),
        ...l.dials,
    });
    return { ...one(l), ...(l.proxy ? { proxy: one(l.proxy) } : {}) };
}

/** One hop of a connection, as the command plugin takes it. */
export interface SshHop extends SshDials {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly hostKey: string;
    readonly privateKey?: string;
    readonly agentSocketPath?: string;
}

/** A connection: the host, and the jump host in front of it. */
export interface SshConnection extends SshHop {
    readonly proxy?: SshHop;
}

/** An SSH agent's socket: an absolute path, and (when `isSocket` can tell) a socket there. */
export function checkAgentSocket(key: string, value: unknown, isSocket?: (path: string) => boolean): string | undefined {
    if (typeof value !== "string" || !value.startsWith("/")) {
        return `${key} must be the absolute path of an SSH agent's socket, like $SSH_AUTH_SOCK (got ${JSON.stringify(value)})`;
    }
    if (isSocket && !isSocket(value)) {
        return `${key}: there is no socket at ${value}; start an agent (\`eval "$(ssh-agent)"; ssh-add KEYFILE\`) and set its $SSH_AUTH_SOCK`;
    }
    return undefined;
}
