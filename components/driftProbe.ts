import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { dependsOnToo } from "../lib/options";
import { providerModule, TextDynamicResource } from "../lib/providerModule";
import type { TunnelHost } from "./host";

/** What a probe stores: how to reach the host, what to run, and what the last look found. */
interface ProbeState {
    readonly connection: command.types.input.remote.ConnectionArgs;
    /** Exits 0 when the object is as declared; else prints what differs. */
    readonly check: string;
    /** `host: object`, for messages. */
    readonly what: string;
    /** "ok", or what the last refresh found wrong: `k1: link ftok2 is missing`. */
    readonly observed: string;
    /**
     * The provider's text (the SDK keeps it in inputs and outputs). A refresh runs the outputs'
     * copy, so a changed text is an update: the next `up` stores the program's code.
     */
    readonly __provider?: string;
}

// The provider's types live out here: the emitted code has no types, so its stored text and
// what it names at run time are the same as with them inside it.

/** A connection as the command plugin stores it: the host, its login, one jump host. */
type Connection = {
    host: string; port?: number; user?: string; privateKey?: string; password?: string;
    agentSocketPath?: string; hostKey?: string; perDialTimeout?: number; proxy?: Connection;
};
type Ssh2 = typeof import("ssh2");
type Client = import("ssh2").Client;
/** One connection a host's probes share, with its sessions in use and those waiting for one. */
type Shared = { client: Promise<Client>; busy: number; queue: (() => void)[] };
/** What one run of the check gave: its exit status and its stdout and stderr together. */
type RunResult = { code: number; out: string };

/**
 * The probe's provider as its dynamic resource stores it (`__provider`): `probeProvider`'s own
 * source and its helpers', taken once, not a closure serialized on every program run
 * ({@link providerModule}).
 */
export const PROBE_PROVIDER_MODULE = providerModule(probeProvider, {
    helpers: [runOnHost, dialHost, connectSsh, execAgain, execOnce, sleep],
});

/**
 * Create and update only record (the component's command did the work); read, which `pulumi
 * refresh` and `up --refresh` call, runs the check on the host ({@link runOnHost}); diff sees a
 * changed check, connection or provider text as an update, and turns a failed look into a
 * replacement, whose new id is the command's stdin, so the command is updated — its idempotent
 * create runs again and rebuilds what is missing — and what sits on it is replaced (its
 * instance, which dependants list in their triggers, has changed).
 */
function probeProvider(): pulumi.dynamic.ResourceProvider {
    return {
        async create(inputs: ProbeState) {
            return { id: require("crypto").randomUUID() as string, outs: { ...inputs, observed: "ok" } };
        },
        async update(_id: string, _olds: ProbeState, news: ProbeState) {
            return { outs: { ...news, observed: "ok" } };
        },
        async diff(_id: string, olds: ProbeState, news: ProbeState) {
            if (olds.observed !== "ok") return { changes: true, replaces: ["observed"], deleteBeforeReplace: false };
            const same = olds.check === news.check && olds.what === news.what && olds.__provider === news.__provider &&
                JSON.stringify(olds.connection) === JSON.stringify(news.connection);
            return { changes: !same };
        },
        async read(id: string, props: ProbeState) {
            let observed: string;
            try {
                const r = await runOnHost(props.connection as Connection, props.check);
                const why = r.out.trim().split("\n").filter((l) => l !== "").pop() ?? `exit status ${r.code}`;
                observed = r.code === 0 ? "ok" : `${props.what}: ${why}`;
            } catch (e) {
                observed = `${props.what}: host unreachable (${(e as Error).message})`;
            }
            return { id, props: { ...props, observed } };
        },
    };
}

/**
 * Runs one script on the host over SSH and reports its exit status and output. A refresh reads
 * many probes of a host at once, so they share one connection per host (kept on `globalThis`, as
 * the host loads the provider anew for each distinct text), with eight sessions at a time (sshd's
 * MaxSessions is 10).
 */
async function runOnHost(conn: Connection, script: string): Promise<RunResult> {
    const ssh2 = require("ssh2") as Ssh2;
    const g = globalThis as unknown as { __fouProbeSsh?: Map<string, Shared> };
    const pool = (g.__fouProbeSsh ??= new Map<string, Shared>());
    const key = JSON.stringify([conn.host, conn.port, conn.user, conn.hostKey, conn.proxy?.host, conn.privateKey, conn.agentSocketPath]);
    let s = pool.get(key);
    if (!s) {
        const mine: Shared = { client: dialHost(ssh2, conn), busy: 0, queue: [] };
        const forget = () => pool.get(key) === mine && pool.delete(key);
        mine.client.then((c) => c.on("close", forget).on("error", forget), forget);
        pool.set(key, (s = mine));
    }
    const shared = s;
    const client = await shared.client;
    if (shared.busy >= 8) await new Promise<void>((resolve) => shared.queue.push(resolve));
    shared.busy++;
    try {
        return await execAgain(client, script);
    } finally {
        shared.busy--;
        shared.queue.shift()?.();
    }
}

/**
 * A connection to the host, through its jump host if it has one, dialled up to three times (a
 * host key that does not match, once), each login within the host's `perDialTimeout` (15 s
 * unset; the jump host's too): a probe that cannot reach its host says so instead of waiting.
 */
async function dialHost(ssh2: Ssh2, conn: Connection): Promise<Client> {
    const timeout = conn.perDialTimeout ?? 15;
    const dialOnce = async () => {
        if (!conn.proxy) return connectSsh(ssh2, conn, timeout);
        const jump = await connectSsh(ssh2, conn.proxy, timeout);
        return connectSsh(ssh2, conn, timeout, await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
            jump.forwardOut("127.0.0.1", 0, conn.host, conn.port ?? 22, (e, ch) => (e ? reject(e) : resolve(ch)))));
    };
    for (let attempt = 1; ; attempt++) {
        try {
            return await dialOnce();
        } catch (e) {
            if (attempt >= 3 || /verification failed/.test((e as Error).message)) throw e;
            await sleep(500 * attempt);
        }
    }
}

/**
 * One SSH login as the command plugin makes it: user root and port 22 by default; the agent is
 * agentSocketPath's, else SSH_AUTH_SOCK's (here only without a key); a pinned host key must
 * match, and without one any key is accepted. `ssh2` is the module (runOnHost requires it, so
 * a provider without it fails each look at once); `sock` is a channel through the jump host.
 */
function connectSsh(ssh2: Ssh2, c: Connection, timeoutSeconds: number, sock?: NodeJS.ReadableStream): Promise<Client> {
    return new Promise<Client>((resolve, reject) => {
        const client = new ssh2.Client();
        const want = c.hostKey?.trim().split(/\s+/)[1];
        client.on("ready", () => resolve(client)).on("error", (e) => reject(new Error(`${c.host}:${c.port ?? 22}: ${e.message}`))).connect({
            host: c.host, port: c.port ?? 22, username: c.user ?? "root", privateKey: c.privateKey, password: c.password,
            agent: c.agentSocketPath ?? (c.privateKey === undefined ? process.env.SSH_AUTH_SOCK : undefined),
            readyTimeout: timeoutSeconds * 1000, sock: sock as never,
            hostVerifier: (key: Buffer) => want === undefined || key.toString("base64") === want,
        });
    });
}

/**
 * Runs the script in a new session, asking again, with a short backoff, when the server refuses
 * to open the session or to exec in it: sshd does so now and then (seen on test hosts with eight
 * in use), and the check never ran, which is no verdict on the host.
 */
async function execAgain(client: Client, script: string): Promise<RunResult> {
    for (let attempt = 1; ; attempt++) {
        try {
            return await execOnce(client, script);
        } catch (e) {
            if (attempt >= 6 || !/Channel open failure|Unable to exec/.test((e as Error).message)) throw e;
            await sleep(Math.min(1000, 100 * 2 ** attempt));
        }
    }
}

/** Runs the script in one session, closed after two minutes; rejects when the server refuses it. */
function execOnce(client: Client, script: string): Promise<RunResult> {
    return new Promise<RunResult>((resolve, reject) => client.exec(script, (e, ch) => {
        if (e) return reject(e);
        let out = "";
        const timer = setTimeout(() => ch.close(), 120_000);
        ch.on("data", (d: Buffer) => (out += d)).stderr.on("data", (d: Buffer) => (out += d));
        ch.on("close", (code: number | null) => (clearTimeout(timer), resolve({ code: code ?? 255, out })));
    }));
}

/** Resolves after `ms` milliseconds. */
function sleep(ms: number): Promise<unknown> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface DriftProbeArgs {
    readonly host: TunnelHost;
    /** Shell body that exits 0 when the object is as declared (a HostObject's `check`). */
    readonly check: pulumi.Input<string>;
    /** The object, for messages: `link ftok2`. */
    readonly object: string;
}

/**
 * Looks at one object on a host whenever the stack is refreshed. A Command never sees drift
 * (its read returns the stored state), so each tunnel object has a probe beside it: a port, link,
 * address or route deleted or changed by hand, a dead or rebuilt host, shows in
 * `pulumi preview --refresh` as this probe's replacement (`observed: "k1: link ftok2 is
 * missing"`), and `pulumi up --refresh` rebuilds exactly that object and what sits on it.
 */
export class DriftProbe extends TextDynamicResource {
    // `declare`: a class field (ES2022) would be set to undefined after the constructor has set the output.
    declare public readonly observed: pulumi.Output<string>;

    constructor(name: string, args: DriftProbeArgs, opts: pulumi.CustomResourceOptions = {}) {
        super(
            PROBE_PROVIDER_MODULE,
            "DriftProbe",
            name,
            { connection: args.host.connection, check: args.check, what: `${args.host.name}: ${args.object}`, observed: undefined },
            {
                ...opts,
                additionalSecretOutputs: ["connection"],
                dependsOn: dependsOnToo(opts.dependsOn, args.host.readyAfter),
                deletedWith: opts.deletedWith ?? args.host.deletedWith,
            },
        );
    }
}
