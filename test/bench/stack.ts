/**
 * The bench's stack: `scripts/pulumi` (what users run) with the user's environment, a throwaway
 * file backend and a passphrase file beside it (as scripts/lib.sh makes for .pulumi-state), and
 * the stack's config in a file outside the repository. Every command's wall clock is timed from
 * spawn to exit.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import YAML from "yaml";

export const REPO = path.resolve(__dirname, "..", "..");
export const PULUMI = path.join(REPO, "scripts", "pulumi");

/**
 * The environment users run `scripts/pulumi` and `npm run up` with: the one the bench was started
 * with, less what users don't set. TS_NODE_* goes (TS_NODE_TRANSPILE_ONLY=true would skip the
 * program's type check that tsconfig.json's "ts-node" section decides), and so does any choice of
 * backend or passphrase (the bench brings its own). Returns the names removed.
 */
export function userEnv(base: NodeJS.ProcessEnv = process.env): { env: NodeJS.ProcessEnv; removed: string[] } {
    const env: NodeJS.ProcessEnv = {};
    const removed: string[] = [];
    for (const [k, v] of Object.entries(base)) {
        if (/^TS_NODE_/.test(k) || ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"].includes(k)) {
            removed.push(k);
        } else {
            env[k] = v;
        }
    }
    return { env, removed: removed.sort() };
}

export interface CommandResult {
    /** The arguments given to scripts/pulumi. */
    readonly argv: string[];
    readonly code: number;
    /** Wall clock from spawn to exit. */
    readonly seconds: number;
    readonly stdout: string;
    readonly stderr: string;
}

export class BenchStack {
    readonly dir = mkdtempSync(path.join(tmpdir(), "fou-bench-"));
    readonly configFile = path.join(this.dir, "stack.yaml");
    readonly passphraseFile = path.join(this.dir, "passphrase");
    readonly env: NodeJS.ProcessEnv;

    constructor(
        readonly name: string,
        base: NodeJS.ProcessEnv,
    ) {
        writeFileSync(this.passphraseFile, randomBytes(18).toString("base64") + "\n", { mode: 0o600 });
        writeFileSync(this.configFile, "config: {}\n");
        this.env = { ...base, PULUMI_BACKEND_URL: `file://${this.dir}`, PULUMI_CONFIG_PASSPHRASE_FILE: this.passphraseFile };
    }

    /** Stack and config arguments for a pulumi subcommand, as users give them for the dev stack. */
    args(cmd: string[]): string[] {
        const out = [...cmd, "--stack", this.name, "--non-interactive"];
        if (cmd[0] !== "stack" && cmd[0] !== "cancel") out.push("--config-file", this.configFile);
        return out;
    }

    /** Runs `scripts/pulumi ARGS` (stack arguments added), its stdout also to ON_STDOUT as it comes; never throws. */
    run(cmd: string[], timeoutMs = 30 * 60_000, onStdout?: (chunk: string) => void): Promise<CommandResult> {
        const argv = this.args(cmd);
        return new Promise((resolve) => {
            const out: Buffer[] = [];
            const err: Buffer[] = [];
            const started = performance.now();
            const child = spawn(PULUMI, argv, { cwd: REPO, env: this.env, stdio: ["ignore", "pipe", "pipe"] });
            child.stdout.on("data", (d: Buffer) => (out.push(d), onStdout?.(d.toString("utf8"))));
            child.stderr.on("data", (d: Buffer) => err.push(d));
            const timer = setTimeout(() => child.kill("SIGINT"), timeoutMs);
            const done = (code: number, extra = "") => {
                clearTimeout(timer);
                resolve({
                    argv,
                    code,
                    seconds: (performance.now() - started) / 1000,
                    stdout: Buffer.concat(out).toString("utf8"),
                    stderr: Buffer.concat(err).toString("utf8") + extra,
                });
            };
            child.on("error", (e) => done(127, String(e)));
            child.on("close", (code, signal) => done(code ?? (signal ? 128 : 1), signal ? `killed by ${signal}` : ""));
        });
    }

    /** Like run(), but throws with the end of the output when the command fails. */
    async ok(cmd: string[]): Promise<CommandResult> {
        const r = await this.run(cmd);
        if (r.code !== 0) throw new Error(`scripts/pulumi ${r.argv.join(" ")} failed (${r.code}):\n${tail(r.stdout + r.stderr)}`);
        return r;
    }

    /** `stack init` and the stack's config file (`fou-tunnel:` keys). */
    async init(config: Record<string, unknown>): Promise<void> {
        await this.ok(["stack", "init", "--secrets-provider", "passphrase"]);
        writeFileSync(this.configFile, YAML.stringify({ config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`fou-tunnel:${k}`, v])) }));
    }

    /** `pulumi config set --secret fou-tunnel:KEY` with the value on stdin, as a user sets a key file. */
    setSecret(key: string, value: string): void {
        execFileSync(PULUMI, this.args(["config", "set", "--secret", `fou-tunnel:${key}`]), { cwd: REPO, env: this.env, input: value, stdio: ["pipe", "ignore", "pipe"] });
    }

    async outputs(): Promise<Record<string, any>> {
        return JSON.parse((await this.ok(["stack", "output", "--json", "--show-secrets"])).stdout);
    }

    /**
     * Destroys what is left (after clearing the lock of a pulumi that was interrupted), removes
     * the stack and its backend directory. Returns what failed, if anything.
     */
    async cleanup(): Promise<string | undefined> {
        let r = await this.run(["destroy", "--yes", "--skip-preview"]);
        if (r.code !== 0 && /currently locked/.test(r.stdout + r.stderr)) {
            await this.run(["cancel", "--yes"]);
            r = await this.run(["destroy", "--yes", "--skip-preview"]);
        }
        if (r.code !== 0) return `cleanup destroy failed (${r.code}), backend kept in ${this.dir}:\n${tail(r.stdout + r.stderr)}`;
        await this.run(["stack", "rm", "--yes", "--force"]);
        rmSync(this.dir, { recursive: true, force: true });
        return undefined;
    }
}

/** The dev stack's `fou-tunnel:` config (Pulumi.dev.yaml), keys without the namespace. */
export function devConfig(): Record<string, unknown> {
    const doc = YAML.parse(readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8")) as { config?: Record<string, unknown> };
    return Object.fromEntries(
        Object.entries(doc.config ?? {})
            .filter(([k]) => k.startsWith("fou-tunnel:"))
            .map(([k, v]) => [k.slice("fou-tunnel:".length), v]),
    );
}

/** The end of a command's output for an error message: its last LINES lines, at most CHARS characters. */
export function tail(text: string, lines = 30, chars = 4000): string {
    const t = text.trimEnd().split("\n").slice(-lines).join("\n");
    return t.length > chars ? "…" + t.slice(-chars) : t;
}
