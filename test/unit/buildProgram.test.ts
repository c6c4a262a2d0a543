import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";

// main.js's build of the program (scripts/build-program.js): what is stale is transpiled, with the
// project's tsconfig, and nothing else is touched.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureBuilt } = require("../../scripts/build-program") as {
    ensureBuilt(a: { root: string; entries: readonly string[]; outDir: string }): string[];
};

const root = mkdtempSync(path.join(tmpdir(), "fou-build-"));
after(() => rmSync(root, { recursive: true, force: true }));
const outDir = path.join(root, ".build", "program");
const args = { root, entries: ["index.ts", "lib"], outDir };
const run = () => execFileSync(process.execPath, ["-e", `console.log(JSON.stringify(require(${JSON.stringify(path.join(outDir, "index.js"))})))`], { encoding: "utf8" }).trim();
/** Sets a file's modification time `s` seconds from now (mtime order decides what is stale). */
const age = (file: string, s: number) => utimesSync(file, new Date(Date.now() + s * 1000), new Date(Date.now() + s * 1000));

test("a clean tree builds every source (not .d.ts), and the build runs", () => {
    mkdirSync(path.join(root, "lib"));
    writeFileSync(path.join(root, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "es2022", module: "commonjs", strict: true } }));
    writeFileSync(path.join(root, "index.ts"), 'import { greet } from "./lib/greet";\nexport const out: string = greet("k1");\n');
    writeFileSync(path.join(root, "lib", "greet.ts"), "export function greet(n: string): string { return `hello ${n}`; }\n");
    writeFileSync(path.join(root, "lib", "types.d.ts"), "declare const x: number;\n");
    for (const f of ["tsconfig.json", "index.ts", "lib/greet.ts", "lib/types.d.ts"]) age(path.join(root, f), -60);
    assert.deepEqual(ensureBuilt(args), ["index.ts", path.join("lib", "greet.ts")]);
    assert.equal(run(), '{"out":"hello k1"}');
});

test("nothing stale: nothing is rewritten", () => {
    const out = path.join(outDir, "lib", "greet.js");
    const before = statSync(out).mtimeMs;
    assert.deepEqual(ensureBuilt(args), []);
    assert.equal(statSync(out).mtimeMs, before);
});

test("a changed source is built again, alone; a changed tsconfig rebuilds everything", () => {
    writeFileSync(path.join(root, "lib", "greet.ts"), "export function greet(n: string): string { return `hi ${n}`; }\n");
    age(path.join(root, "lib", "greet.ts"), 30);
    assert.deepEqual(ensureBuilt(args), [path.join("lib", "greet.ts")]);
    assert.equal(run(), '{"out":"hi k1"}');
    age(path.join(root, "tsconfig.json"), 60);
    assert.deepEqual(ensureBuilt(args), ["index.ts", path.join("lib", "greet.ts")]);
    assert.match(readFileSync(path.join(outDir, "index.js"), "utf8"), /require\("\.\/lib\/greet"\)/);
});

test("a source that does not parse fails the build naming the file", () => {
    writeFileSync(path.join(root, "lib", "greet.ts"), "export function greet(n: string { return n; }\n");
    age(path.join(root, "lib", "greet.ts"), 90);
    assert.throws(() => ensureBuilt(args), /^Error: lib\/greet\.ts: cannot transpile: /);
});
