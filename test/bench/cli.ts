/**
 * What both benches share as programs: the results file (JSON lines), a header record saying
 * what was measured, the user's environment, and stopping cleanly on SIGINT/SIGTERM (the current
 * step finishes, the stack is destroyed, then the bench exits).
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import * as path from "node:path";
import { REPO, userEnv } from "./stack";

export interface Bench {
    readonly resultsFile: string;
    readonly env: NodeJS.ProcessEnv;
    readonly runs: number;
    /** Prints a record as one JSON line and appends it to the results file. */
    emit(record: Record<string, unknown>): void;
    /** Appends text to the results file's companion .txt (the printed summary) and prints it. */
    report(text: string): void;
    stopping(): boolean;
}

/** Starts a bench named NAME: results under BENCH_RESULTS (a file path) or a new file in the temp directory. */
export function startBench(name: string, extra: Record<string, unknown>): Bench {
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
    const resultsFile = path.resolve(process.env.BENCH_RESULTS || path.join(tmpdir(), `fou-${name}-${stamp}.jsonl`));
    mkdirSync(path.dirname(resultsFile), { recursive: true });
    writeFileSync(resultsFile, "");
    const summaryFile = resultsFile.replace(/\.jsonl$/, "") + ".txt";
    writeFileSync(summaryFile, "");
    const runs = Number(process.env.RUNS ?? "3");
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`RUNS must be a positive integer (got ${process.env.RUNS})`);
    const { env, removed } = userEnv();
    let stop = false;
    const onSignal = (sig: NodeJS.Signals) => {
        if (stop) process.exit(130);
        stop = true;
        console.error(`${name}: ${sig}: stopping after the current step (the stack is destroyed); again to quit at once`);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const bench: Bench = {
        resultsFile,
        env,
        runs,
        emit(record) {
            const line = JSON.stringify(record);
            console.log(line);
            appendFileSync(resultsFile, line + "\n");
        },
        report(text) {
            console.log(text);
            appendFileSync(summaryFile, text + "\n");
        },
        stopping: () => stop,
    };
    console.error(`${name}: results in ${resultsFile} (summary in ${summaryFile})`);
    bench.emit({
        kind: "bench",
        bench: name,
        startedAt: new Date().toISOString(),
        runs,
        ...extra,
        commit: git(["rev-parse", "--short", "HEAD"]),
        dirtyFiles: git(["status", "--porcelain", "--untracked-files=no"]).split("\n").filter((l) => l !== "").length,
        cpus: cpus().length,
        memoryMiB: Math.round(totalmem() / 2 ** 20),
        node: process.version,
        pulumi: pulumiVersion(env),
        envRemoved: removed,
    });
    return bench;
}

function git(args: string[]): string {
    try {
        return execFileSync("git", args, { cwd: REPO, encoding: "utf8" }).trim();
    } catch {
        return "";
    }
}

function pulumiVersion(env: NodeJS.ProcessEnv): string {
    try {
        return execFileSync(path.join(REPO, "scripts", "pulumi"), ["version"], {
            cwd: REPO,
            // a backend and passphrase of its own, so scripts/pulumi creates nothing in .pulumi-state
            env: { ...env, PULUMI_BACKEND_URL: `file://${tmpdir()}`, PULUMI_CONFIG_PASSPHRASE: "" },
            encoding: "utf8",
        }).trim();
    } catch {
        return "";
    }
}

/** Runs MAIN, printing an error and exiting 1 when it throws. */
export function runMain(main: () => Promise<void>): void {
    main().then(
        () => process.exit(0),
        (e) => {
            console.error(e instanceof Error ? e.message : e);
            process.exit(1);
        },
    );
}
