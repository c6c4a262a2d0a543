// @ts-check
/**
 * Keeps a JavaScript build of the program beside its TypeScript, for `main.js` to start.
 *
 * Pulumi's own start of a `.ts` program registers ts-node: it loads the compiler, transpiles
 * every file and maps every stack trace through source maps (the SDK takes a stack for each
 * resource), on every run — ~0.8 s of each of the two runs an `up` makes (preview, update).
 * Here a source is transpiled once, when it is newer than its output (or the output is
 * missing), with the ts-node and swc settings that Pulumi's start uses (the same JavaScript, so a
 * dynamic provider's serialized code in the state does not change); every other
 * run only compares modification times. There is no type check here, as there was none
 * before: `npm test` runs `tsc`.
 *
 * Outputs are written to a temporary file and renamed, so two stacks starting at once never
 * read half a file.
 */
"use strict";
const fs = require("fs");
const path = require("path");

/**
 * The `.ts` files (not `.d.ts`) under `entries` (files or folders, relative to `root`).
 * @param {string} root
 * @param {readonly string[]} entries
 * @returns {string[]} paths relative to root
 */
function sourcesOf(root, entries) {
    /** @type {string[]} */
    const found = [];
    /** @param {string} rel */
    const walk = (rel) => {
        const full = path.join(root, rel);
        const st = fs.statSync(full);
        if (st.isDirectory()) {
            for (const name of fs.readdirSync(full).sort()) walk(path.join(rel, name));
        } else if (rel.endsWith(".ts") && !rel.endsWith(".d.ts")) {
            found.push(rel);
        }
    };
    for (const e of entries) walk(e);
    return found;
}

/**
 * @param {string} file
 * @returns {number} the modification time in ms, or -1 when the file is missing
 */
function mtime(file) {
    try {
        return fs.statSync(file).mtimeMs;
    } catch {
        return -1;
    }
}

/**
 * Transpiles each source under `entries` whose output in `outDir` is missing or older than it
 * (or than `tsconfig.json`), and returns the sources it transpiled.
 * @param {{ root: string, entries: readonly string[], outDir: string }} args
 * @returns {string[]}
 */
function ensureBuilt({ root, entries, outDir }) {
    const tsconfig = path.join(root, "tsconfig.json");
    const configTime = mtime(tsconfig);
    const outOf = (/** @type {string} */ rel) => path.join(outDir, rel.replace(/\.ts$/, ".js"));
    const stale = sourcesOf(root, entries).filter((rel) => {
        const out = mtime(outOf(rel));
        return out < mtime(path.join(root, rel)) || out < configTime;
    });
    if (stale.length === 0) return stale;
    // Loaded only when something is to be built: ts-node brings the compiler (~0.3 s).
    const tsNode = require("ts-node");
    const service = tsNode.create({
        cwd: root,
        project: configTime < 0 ? undefined : tsconfig,
        skipProject: configTime < 0,
        transpileOnly: true,
        swc: true,
        // Pulumi's start (`@pulumi/pulumi/cmd/run`) lays the tsconfig's compiler options over its
        // defaults, so the tsconfig alone says how the program was always transpiled.
    });
    for (const rel of stale) {
        const src = path.join(root, rel);
        let js;
        try {
            js = service.compile(fs.readFileSync(src, "utf8"), src);
        } catch (e) {
            throw new Error(`${rel}: cannot transpile: ${e instanceof Error ? e.message : String(e)}`);
        }
        const out = outOf(rel);
        fs.mkdirSync(path.dirname(out), { recursive: true });
        const tmp = `${out}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, js);
        fs.renameSync(tmp, out);
    }
    return stale;
}

module.exports = { ensureBuilt, sourcesOf };
