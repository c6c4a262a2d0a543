// @ts-check
/**
 * The program's entry point (Pulumi.yaml `main`): builds what changed of the TypeScript program
 * into `.build/program/` (see scripts/build-program.js), then runs it, from the project
 * directory as before. Pulumi starts this file with plain node (`typescript: false`), so no run
 * of `pulumi` loads ts-node or maps stack traces; the program itself is `index.ts`.
 */
"use strict";
const path = require("path");
const { ensureBuilt } = require("./scripts/build-program");

const outDir = path.join(__dirname, ".build", "program");
ensureBuilt({ root: __dirname, entries: ["index.ts", "config.ts", "components", "hosts", "lib", "topology"], outDir });
module.exports = require(path.join(outDir, "index.js"));
