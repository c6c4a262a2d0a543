/**
 * The components as a library: importing them declares nothing; two FouTopology instances in one
 * program never share a resource name; the program's own topology keeps every resource it had
 * before children carried the topology's name (aliases, as the engine resolves them, reach every
 * old URN of topologies/mesh3.yaml and guide.yaml), and its commands adopt the host state kept
 * under the old names.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { builtinModules } from "node:module";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { HOST_SHELLS, runIn } from "./hostShells";
import { settle, valueOf } from "./mocks";
import { adoptStateScript, FouTopology } from "../../components/fouTopology";
import { TunnelHost } from "../../components/host";
import { STATE_ROOT } from "../../components/hostState";
import { loadTopology } from "../../topology";

const REPO = path.resolve(__dirname, "..", "..");
const OLD = JSON.parse(readFileSync(path.join(__dirname, "fixtures", "fouTopology-urns-unprefixed.json"), "utf8")) as Record<string, string[]>;

interface Seen {
    readonly type: string;
    readonly name: string;
    readonly parent?: pulumi.Resource;
    readonly aliases: string[];
    create?: pulumi.Input<string>;
    update?: pulumi.Input<string>;
}

/** Builds a topology file's FouTopology under mocks; every resource under it, as registered. */
async function build(file: string, name: string): Promise<Map<pulumi.Resource, Seen>> {
    const topology = loadTopology(path.join(REPO, "topologies", file), { kind: "local", underlay: "198.51.100.1/24" });
    const hosts: Record<string, TunnelHost> = Object.fromEntries(
        topology.hosts.map((h) => [h.name, { name: h.name, underlayAddress: h.address!, device: "eth0", connection: { host: h.address! } }]),
    );
    const seen = new Map<pulumi.Resource, Seen>();
    // Runs after FouTopology's own transformation: what it records is what reaches the engine.
    const record: pulumi.ResourceTransformation = (t) => {
        const aliases = (t.opts.aliases ?? []).map((a) => (typeof a === "string" ? a : String((a as pulumi.Alias).name)));
        seen.set(t.resource, { type: t.type, name: t.name, parent: t.opts.parent, aliases, create: t.props.create, update: t.props.update });
        return undefined;
    };
    const topo = new FouTopology(name, { topology, hosts }, { transformations: [record] });
    await valueOf(topo.checks);
    await settle();
    return seen;
}

/** `type$type::name` of a resource (the URN without stack and project). */
function urnOf(seen: Map<pulumi.Resource, Seen>, r: pulumi.Resource): string {
    const s = seen.get(r)!;
    return `${typesOf(seen, r)}::${s.name}`;
}
function typesOf(seen: Map<pulumi.Resource, Seen>, r: pulumi.Resource): string {
    const s = seen.get(r)!;
    return s.parent && seen.has(s.parent) ? `${typesOf(seen, s.parent)}$${s.type}` : s.type;
}

/**
 * The URNs the engine looks up a resource by when it is not found under its own: its aliases
 * (same parent, the old name), then those inherited from its parent's aliases, the parent's name
 * replaced by the alias's at the start of the child's (step_generator.go, generateAliases and
 * inheritedChildAlias, pulumi v3.248.0).
 */
function aliasesOf(seen: Map<pulumi.Resource, Seen>, r: pulumi.Resource): string[] {
    const s = seen.get(r)!;
    const own = s.aliases.map((n) => `${typesOf(seen, r)}::${n}`);
    const parent = s.parent && seen.has(s.parent) ? seen.get(s.parent)! : undefined;
    if (!parent) return own;
    const inherited = aliasesOf(seen, s.parent!).flatMap((pa) => {
        const [types, paName] = pa.split("::");
        const candidates = [s.name, ...s.aliases];
        return candidates.map((n) => `${types}$${s.type}::${n.startsWith(parent.name) ? paName + n.slice(parent.name.length) : n}`);
    });
    return [...new Set([...own, ...inherited])];
}

for (const file of ["mesh3.yaml", "guide.yaml"]) {
    test(`${file}: every resource of the unprefixed topology is reached by exactly one resource of the prefixed one`, async () => {
        const seen = await build(file, "fou");
        const old = OLD[file];
        assert.ok(old.length > 40, "the fixture lists the old URNs");
        const urns = [...seen.keys()].map((r) => urnOf(seen, r));
        for (const [r, s] of seen) {
            if (s.type !== "fou:index:FouTopology") {
                assert.ok(s.name.startsWith("fou-"), `${urnOf(seen, r)} carries the topology's name`);
            }
        }
        for (const u of old) {
            const claimants = [...seen.keys()].filter((r) => urnOf(seen, r) === u || aliasesOf(seen, r).includes(u));
            assert.equal(claimants.length, 1, `${u}: claimed by ${claimants.map((r) => urnOf(seen, r)).join(", ") || "nothing"}`);
        }
        // The topology itself keeps its URN; nothing new answers to a name an old resource had
        // unless it is that resource.
        assert.ok(urns.includes("fou:index:FouTopology::fou"));
    });
}

test("two topologies in one program: no URN twice", async () => {
    const a = await build("mesh3.yaml", "fou");
    const b = await build("mesh3.yaml", "lab");
    const all = [...[...a.keys()].map((r) => urnOf(a, r)), ...[...b.keys()].map((r) => urnOf(b, r))];
    const twice = all.filter((u, i) => all.indexOf(u) !== i);
    assert.deepEqual(twice, []);
    assert.ok(all.some((u) => u.endsWith("::lab-k1-k2-k1-link")));
});

test("every remote command of a topology adopts its old state first, in create and update", async () => {
    const seen = await build("guide.yaml", "fou");
    const commands = [...seen.values()].filter((s) => s.type === "command:remote:Command");
    assert.ok(commands.length > 10);
    for (const c of commands) {
        const old = c.name.slice("fou-".length);
        const create = await valueOf(c.create!);
        assert.ok(create.startsWith(`# fou-tunnel: host state kept under ${old} (`), `${c.name}: ${create.slice(0, 120)}`);
        if (c.update !== undefined) {
            assert.ok((await valueOf(c.update)).startsWith(`# fou-tunnel: host state kept under ${old} (`), c.name);
        }
    }
});

// The adoption changes files: each host shell gets a state directory of its own.
for (const shell of HOST_SHELLS) {
    test(`the adoption moves exactly the old name's files and claims, once, never over newer ones (${shell.name})`, () => {
        const root = mkdtempSync(path.join(tmpdir(), "fou-adopt-"));
        try {
            const ns = path.join(root, "fou-tunnel.dev");
            mkdirSync(ns, { recursive: true });
            mkdirSync(path.join(root, "shared", "fou-port-5555-ipproto-4"), { recursive: true });
            const put = (p: string, text = "") => writeFileSync(path.join(root, p), text);
            put("fou-tunnel.dev/k1-prep-kernel.modules", "fou\nipip\n");
            put("fou-tunnel.dev/k1-prep-kernel.tmp.x", "not a state file of this resource");
            put("fou-tunnel.dev/k1-prep-kernel-probe.id", "another resource's");
            put("fou-tunnel.dev/k1-fou-5555-fou.id", "old-id");
            put("fou-tunnel.dev/fou-k1-fou-5555-fou.id", "new-id");
            put("shared/fou-port-5555-ipproto-4/fou-tunnel.dev.k1-fou-5555-fou");
            put("shared/fou-port-5555-ipproto-4/fou-tunnel.other.k1-fou-5555-fou");
            /** Runs TEXT under this shell; a failure fails the test (as execFileSync's throw did). */
            const sh = (text: string, cwd?: string) => {
                const r = runIn(shell, text, { cwd });
                assert.equal(r.code, 0, `${shell.name}: exit ${r.code}\n${r.stdout}${r.stderr}`);
                return r;
            };
            const run = (oldName: string, newName: string) => sh(adoptStateScript(oldName, newName, "fou-tunnel.dev").split(STATE_ROOT).join(root)).stdout;
            run("k1-prep-kernel", "fou-k1-prep-kernel");
            run("k1-fou-5555-fou", "fou-k1-fou-5555-fou");
            run("k1-prep-kernel", "fou-k1-prep-kernel"); // again: nothing left to move
            assert.deepEqual(readdirSync(ns).sort(), [
                "fou-k1-fou-5555-fou.id",
                "fou-k1-prep-kernel.modules",
                "k1-fou-5555-fou.id", // the new name already had one: left as it was
                "k1-prep-kernel-probe.id",
                "k1-prep-kernel.tmp.x",
            ]);
            assert.equal(readFileSync(path.join(ns, "fou-k1-prep-kernel.modules"), "utf8"), "fou\nipip\n");
            assert.equal(readFileSync(path.join(ns, "fou-k1-fou-5555-fou.id"), "utf8"), "new-id");
            assert.deepEqual(readdirSync(path.join(root, "shared", "fou-port-5555-ipproto-4")).sort(), [
                "fou-tunnel.dev.fou-k1-fou-5555-fou",
                "fou-tunnel.other.k1-fou-5555-fou", // another stack's claim
            ]);
            // With nothing of the old name on the host, it starts no process: not even `id`.
            const quiet = adoptStateScript("k2-prep-kernel", "fou-k2-prep-kernel", "fou-tunnel.dev").split(STATE_ROOT).join(root);
            assert.equal(sh(`id() { echo CALLED; }; sudo() { echo CALLED; }\n${quiet}`).stdout, "");
            // …and with a file of the old name left (k1-fou-5555-fou.id, kept above), it looks as root.
            const left = runIn(shell, `id() { echo CALLED >&2; echo 0; }\n${adoptStateScript("k1-fou-5555-fou", "z", "fou-tunnel.dev").split(STATE_ROOT).join(root)}`);
            assert.equal(left.stderr, "CALLED\n");
            // Hostile names stay data.
            sh(adoptStateScript("x'; touch pwned; '", "y", "fou-tunnel.dev").split(STATE_ROOT).join(root), root);
            assert.ok(!readdirSync(root).includes("pwned"));
        } finally {
            rmSync(root, { recursive: true, force: true });
        }
    });
}

test("importing the library declares nothing and reads no configuration", () => {
    const probe = [
        'const pulumi = require("@pulumi/pulumi");',
        "let reads = 0, resources = 0;",
        'for (const m of ["get", "require", "getObject", "requireObject", "getSecret", "requireSecret", "getNumber", "getBoolean"]) {',
        "  const f = pulumi.Config.prototype[m]; pulumi.Config.prototype[m] = function (...a) { reads++; return f.apply(this, a); };",
        "}",
        'const reg = require("@pulumi/pulumi/runtime/resource"); const r = reg.registerResource; reg.registerResource = (...a) => { resources++; return r(...a); };',
        'const lib = require("./components"); require("./topology");',
        'console.log(JSON.stringify({ reads, resources, FouTopology: typeof lib.FouTopology, SshHost: typeof lib.SshHost, FouTunnel: typeof lib.FouTunnel }));',
    ].join("\n");
    const out = execFileSync(process.execPath, ["--require", "ts-node/register", "-e", probe], {
        cwd: REPO,
        encoding: "utf8",
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true", PULUMI_CONFIG: undefined as unknown as string },
    });
    assert.deepEqual(JSON.parse(out.trim().split("\n").pop()!), { reads: 0, resources: 0, FouTopology: "function", SshHost: "function", FouTunnel: "function" });
});

test("the library depends on what it imports, and no more: @pulumi/aws and @pulumi/tls are the program's (hosts/), not the package's", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8"));
    const imported = new Set<string>();
    const walk = (dir: string): void => {
        for (const e of readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
            const rel = path.join(dir, e.name);
            if (e.isDirectory()) walk(rel);
            else if (rel.endsWith(".ts") && !rel.endsWith(".test.ts")) {
                for (const m of readFileSync(path.join(REPO, rel), "utf8").matchAll(/^import .* from "([^".][^"]*)";$/gm)) {
                    const spec = m[1].startsWith("@") ? m[1].split("/").slice(0, 2).join("/") : m[1].split("/")[0];
                    if (!spec.startsWith("node:") && !builtinModules.includes(spec)) imported.add(spec);
                }
            }
        }
    };
    for (const dir of ["components", "lib", "topology"]) walk(dir);
    const deps = Object.keys(pkg.dependencies).sort();
    // Types only are dev dependencies; every runtime import is a dependency.
    for (const m of imported) assert.ok(deps.includes(m) || m.startsWith("@types/"), `${m} is imported by the library but not a dependency`);
    assert.deepEqual(deps.filter((d) => !imported.has(d)), [], "dependencies the library does not import");
    for (const d of ["@pulumi/aws", "@pulumi/tls"]) assert.ok(d in pkg.devDependencies, `${d} is a dev dependency`);
});
