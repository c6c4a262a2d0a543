/**
 * examples/existing-hosts as a user would have it: a copy outside the repository (so nothing
 * resolves through the checkout's node_modules) that installs fou-tunnel from the checkout's
 * packed files (`install-links`), and `scripts/pulumi --cwd` on it with a throwaway backend.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import YAML from "yaml";
import { PulumiResult, REPO } from "./harness";

const run = promisify(execFile);
export const EXAMPLE = path.join(REPO, "examples", "existing-hosts");

/**
 * Builds the library as `prepare` does (`npm run build:lib`: bin/ from `tsconfig.build.json`, and
 * the hosts' shell, components/sh, beside it), copies the example to a new temporary
 * directory with its `file:../..` pointed at the checkout, and runs `npm ci --offline
 * --ignore-scripts` there (package-lock.json pins what the project itself uses, so npm's cache
 * has every package). Returns the directory.
 */
export function installExample(): string {
    execFileSync("npm", ["run", "--silent", "build:lib"], { cwd: REPO, stdio: "inherit" });
    const dir = mkdtempSync(path.join(tmpdir(), "fou-example-"));
    for (const f of ["Pulumi.yaml", "package.json", "package-lock.json", "tsconfig.json", "index.ts", ".npmrc"]) {
        cpSync(path.join(EXAMPLE, f), path.join(dir, f));
    }
    for (const f of ["package.json", "package-lock.json"]) {
        const p = path.join(dir, f);
        writeFileSync(p, readFileSync(p, "utf8").split('"file:../.."').join(JSON.stringify(`file:${REPO}`)));
    }
    execFileSync("npm", ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "inherit" });
    return dir;
}

/** A stack of the example program in its own backend, its config in a file beside it. */
export class ExampleStack {
    readonly backend = mkdtempSync(path.join(tmpdir(), "fou-example-state-"));
    readonly configFile = path.join(this.backend, "stack.yaml");
    private readonly env: NodeJS.ProcessEnv;

    constructor(
        readonly dir: string,
        readonly name: string,
    ) {
        this.env = { ...process.env, PULUMI_BACKEND_URL: `file://${this.backend}`, PULUMI_CONFIG_PASSPHRASE: randomBytes(12).toString("hex") };
        delete this.env.TS_NODE_TRANSPILE_ONLY; // the program's own tsconfig decides
    }

    /** `scripts/pulumi --cwd DIR ARGS --stack NAME --non-interactive [--config-file FILE]`; never throws. */
    async pulumi(args: string[], timeoutMs = 20 * 60_000): Promise<PulumiResult> {
        const started = Date.now();
        const flags = ["--stack", this.name, "--non-interactive", ...(args[0] === "stack" ? [] : ["--config-file", this.configFile])];
        // Flags go before a `--` (after it, everything is a value).
        const end = args.indexOf("--");
        const all = ["--cwd", this.dir, ...(end < 0 ? [...args, ...flags] : [...args.slice(0, end), ...flags, ...args.slice(end)])];
        try {
            const r = await run(path.join(REPO, "scripts", "pulumi"), all, { env: this.env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
            return { stdout: r.stdout, stderr: r.stderr, code: 0, seconds: (Date.now() - started) / 1000 };
        } catch (e: any) {
            return { stdout: e.stdout ?? "", stderr: e.stderr ?? String(e), code: e.code ?? 1, seconds: (Date.now() - started) / 1000 };
        }
    }

    async ok(args: string[]): Promise<PulumiResult> {
        const r = await this.pulumi(args);
        if (r.code !== 0) {
            throw new Error(`pulumi ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
        }
        return r;
    }

    /** `stack init`, the plain keys written to the config file, the private key set as a secret. */
    async init(config: Record<string, unknown>, privateKey: string): Promise<void> {
        await this.ok(["stack", "init", "--secrets-provider", "passphrase"]);
        await this.setConfig(config);
        await this.ok(["config", "set", "--secret", "privateKey", "--", privateKey]);
    }

    /** Sets `fou-existing-hosts:` keys (undefined removes one), keeping the rest of the file. */
    async setConfig(config: Record<string, unknown>): Promise<void> {
        let doc: { config?: Record<string, unknown> } = {};
        try {
            doc = YAML.parse(readFileSync(this.configFile, "utf8")) ?? {};
        } catch {
            // no file yet
        }
        doc.config = { ...(doc.config ?? {}) };
        for (const [k, v] of Object.entries(config)) {
            if (v === undefined) delete doc.config[`fou-existing-hosts:${k}`];
            else doc.config[`fou-existing-hosts:${k}`] = v;
        }
        writeFileSync(this.configFile, YAML.stringify(doc));
    }

    async outputs(): Promise<Record<string, any>> {
        return JSON.parse((await this.ok(["stack", "output", "--json", "--show-secrets"])).stdout);
    }

    /** Removes the stack and its backend (after a destroy). */
    async remove(): Promise<void> {
        await this.pulumi(["stack", "rm", "--yes", "--force"]);
        rmSync(this.backend, { recursive: true, force: true });
    }
}
