/**
 * The drift probe's provider text, loaded alone as the Node.js dynamic provider host loads it
 * (`require-from-string`, then `handler()`): as ts-node makes it for the program, and as tsc makes
 * it for the library build. Its read runs the check over SSH against an in-process ssh2 server, so
 * the text must work with nothing of the program around it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { Server } from "ssh2";
import * as ts from "typescript";
import { PROBE_PROVIDER_MODULE } from "../../components/driftProbe";
import { ed25519Pair } from "./sshFixtures";

// The SDK's own loader of `__provider` texts (a dependency of @pulumi/pulumi).
const requireFromString = require("require-from-string") as (code: string, filename?: string) => Record<string, unknown>;

type Provider = {
    create(inputs: object): Promise<{ id: string; outs: Record<string, unknown> }>;
    update(id: string, olds: object, news: object): Promise<{ outs: Record<string, unknown> }>;
    diff(id: string, olds: object, news: object): Promise<{ changes: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }>;
    read(id: string, props: object): Promise<{ id: string; props: Record<string, unknown> }>;
};

const componentsDir = path.join(__dirname, "..", "..", "components");

/** driftProbe.ts compiled by tsc with the project's options, as `npm run build:lib` emits it. */
function tscText(): string {
    const file = path.join(componentsDir, "driftProbe.ts");
    const js = ts.transpileModule(readFileSync(file, "utf8"), {
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true },
    }).outputText;
    return requireFromString(js, path.join(componentsDir, "driftProbe.js")).PROBE_PROVIDER_MODULE as string;
}

const hostKey = ed25519Pair();
const otherKey = ed25519Pair();
let server: Server;
let port = 0;
const execs: string[] = [];
/** How many of the next sessions the server refuses to open, as sshd does when its slots are full. */
let refuseSessions = 0;

before(async () => {
    // Any login is accepted; `true` exits 0, anything else reports on stderr and exits 1.
    server = new Server({ hostKeys: [hostKey.private] }, (client) => {
        client.on("authentication", (ctx) => ctx.accept());
        client.on("ready", () =>
            client.on("session", (acceptSession, rejectSession) => {
                if (refuseSessions > 0) {
                    refuseSessions--;
                    return rejectSession();
                }
                acceptSession().on("exec", (accept, _reject, info) => {
                    execs.push(info.command);
                    const ch = accept();
                    if (info.command === "true") {
                        ch.exit(0);
                    } else {
                        ch.write("looked at it\n");
                        ch.stderr.write("k1: link ftok2 is missing\n\n");
                        ch.exit(1);
                    }
                    ch.end();
                });
            }),
        );
        client.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
});

/** Ends the connections that reads keep for their host (so each text dials its own). */
function endPool(): void {
    const pool = (globalThis as { __fouProbeSsh?: Map<string, { client: Promise<{ end(): void }> }> }).__fouProbeSsh;
    for (const s of pool?.values() ?? []) s.client.then((c) => c.end(), () => undefined);
    pool?.clear();
}

after(() => {
    endPool();
    server.close();
});

for (const [how, text] of [
    ["ts-node", () => PROBE_PROVIDER_MODULE],
    ["tsc", tscText],
] as [string, () => string][]) {
    const load = (): Provider => (requireFromString(text()).handler as () => Provider)();

    test(`${how}: the provider text is its source, loaded alone; create and update record, diff replaces after a failed look`, async () => {
        assert.match(text(), /^exports\.handler = \(\) => \(function probeProvider\(\) \{\n/);
        assert.ok(!/\n[ \t]/.test(text()), "no indentation is stored");
        const p = load();
        const inputs = { connection: { host: "k1" }, check: "true", what: "k1: link ftok2", observed: undefined };
        const made = await p.create(inputs);
        assert.match(made.id, /^[0-9a-f-]{36}$/);
        assert.deepEqual(made.outs, { ...inputs, observed: "ok" });
        assert.deepEqual((await p.update(made.id, made.outs, { ...inputs, check: "false" })).outs, { ...inputs, check: "false", observed: "ok" });
        assert.deepEqual(await p.diff(made.id, made.outs, inputs), { changes: false });
        assert.deepEqual(await p.diff(made.id, made.outs, { ...inputs, check: "false" }), { changes: true });
        // The SDK keeps the provider's text beside the state; a new one is an update, so the next up stores it.
        assert.deepEqual(await p.diff(made.id, { ...made.outs, __provider: "old code" }, { ...inputs, __provider: text() }), { changes: true });
        assert.deepEqual(await p.diff(made.id, { ...made.outs, __provider: text() }, { ...inputs, __provider: text() }), { changes: false });
        assert.deepEqual(await p.diff(made.id, { ...made.outs, observed: "k1: link ftok2: gone" }, inputs), {
            changes: true,
            replaces: ["observed"],
            deleteBeforeReplace: false,
        });
    });

    test(`${how}: read runs the check on the host with the pinned key and says what the last line of a failure was`, async () => {
        endPool();
        const p = load();
        const connection = { host: "127.0.0.1", port, user: "probe", password: "x", hostKey: hostKey.public, perDialTimeout: 5 };
        const ok = await p.read("id1", { connection, check: "true", what: "k1: port 5555", observed: "ok" });
        assert.deepEqual(ok, { id: "id1", props: { connection, check: "true", what: "k1: port 5555", observed: "ok" } });
        const bad = await p.read("id2", { connection, check: "ip link show ftok2", what: "k1: link ftok2", observed: "ok" });
        assert.equal(bad.props.observed, "k1: link ftok2: k1: link ftok2 is missing");
        assert.ok(execs.includes("ip link show ftok2"));
    });

    test(`${how}: a session the server refuses to open is asked again: the check had not run, which says nothing of the host`, async () => {
        endPool();
        const p = load();
        const connection = { host: "127.0.0.1", port, user: "probe", password: "x", hostKey: hostKey.public, perDialTimeout: 5 };
        refuseSessions = 3;
        const ok = await p.read("id5", { connection, check: "true", what: "k1: port 5555", observed: "ok" });
        assert.equal(ok.props.observed, "ok");
        assert.equal(refuseSessions, 0);
        // A server that never opens one: the look fails, saying why.
        refuseSessions = 100;
        const bad = await p.read("id6", { connection, check: "true", what: "k1: port 5555", observed: "ok" });
        assert.match(String(bad.props.observed), /^k1: port 5555: host unreachable \(\(SSH\) Channel open failure: /);
        refuseSessions = 0;
    });

    test(`${how}: read of a host that cannot be reached, or shows another host key, says so`, async () => {
        const p = load();
        const wrongKey = { host: "127.0.0.1", port, user: "probe", password: "x", hostKey: otherKey.public, perDialTimeout: 5 };
        const r1 = await p.read("id3", { connection: wrongKey, check: "true", what: "k1: port 5555", observed: "ok" });
        assert.match(String(r1.props.observed), /^k1: port 5555: host unreachable \(127\.0\.0\.1:\d+: .+\)$/);
        // A port nothing listens on: the server's, once closed, is not reused this soon.
        const closed = new Server({ hostKeys: [hostKey.private] }, () => undefined);
        const deadPort = await new Promise<number>((resolve) => closed.listen(0, "127.0.0.1", () => resolve((closed.address() as AddressInfo).port)));
        await new Promise((resolve) => closed.close(resolve));
        const r2 = await p.read("id4", { connection: { host: "127.0.0.1", port: deadPort, password: "x", perDialTimeout: 2 }, check: "true", what: "k2: route", observed: "ok" });
        assert.match(String(r2.props.observed), /^k2: route: host unreachable \(127\.0\.0\.1:\d+: connect ECONNREFUSED/);
    });
}
