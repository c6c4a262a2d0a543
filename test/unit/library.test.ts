/**
 * The components as a library: importing them declares nothing; two FouTopology instances in one
 * program never share a resource name.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { builtinModules } from "node:module";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { settle, tunnelHostsOf, valueOf } from "./mocks";
import { FouTopology } from "../../components/fouTopology";
import { loadTopology } from "../../topology";

const REPO = path.resolve(__dirname, "..", "..");

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
    const hosts = tunnelHostsOf(topology);
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

test("two topologies in one program: no URN twice", async () => {
    const a = await build("mesh3.yaml", "fou");
    const b = await build("mesh3.yaml", "lab");
    const all = [...[...a.keys()].map((r) => urnOf(a, r)), ...[...b.keys()].map((r) => urnOf(b, r))];
    const twice = all.filter((u, i) => all.indexOf(u) !== i);
    assert.deepEqual(twice, []);
    assert.ok(all.some((u) => u.endsWith("::lab-k1-k2-k1-link")));
});

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

test("requiring the topology parser loads neither @pulumi/pulumi nor @pulumi/command", () => {
    // A fresh process: this one has loaded the SDK.
    const program = [
        'require("./topology");',
        'const sdk = Object.keys(require.cache).filter((k) => /[\\\\/]node_modules[\\\\/]@pulumi[\\\\/]/.test(k));',
        "process.stdout.write(JSON.stringify({ sdk, topology: Object.keys(require.cache).some((k) => k.endsWith('topology/index.ts')) }));",
    ].join("\n");
    const out = execFileSync(process.execPath, ["--require", "ts-node/register", "-e", program], {
        cwd: REPO,
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" },
        encoding: "utf8",
    });
    const { sdk, topology } = JSON.parse(out) as { sdk: string[]; topology: boolean };
    assert.ok(topology, "the topology module was loaded");
    assert.deepEqual(sdk, []);
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
