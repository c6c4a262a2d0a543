/**
 * A fake host for host-script fixtures: the host's tools are shell functions defined before the
 * script, the script runs in a subshell with the `set` flags its step runs with, and the run goes
 * through dash, bash and busybox sh (`runInAll`, which demands they agree). A fixture is inputs
 * plus a fake host, and the exit status and output the script must give on it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runInAll } from "./hostShells";

/** Tool name → shell function body: `{ hostname: "echo k9" }` defines `hostname() { echo k9; }`. */
export type Fakes = Readonly<Record<string, string>>;

export interface FakeHostRun {
    /** The fake tools; a name must be a shell function name (`ip`, `command`, `sudo`, …). */
    readonly fakes?: Fakes;
    /** The host script under test, as a component builds it. */
    readonly script: string;
    /**
     * The flags set at the top of the subshell: "eu" (the default) as every step runs, "e", or
     * "" for a body that runs inside one that sets its own.
     */
    readonly set?: "eu" | "e" | "";
    /** PATH for the script: `/nonexistent` leaves only builtins and the fakes. */
    readonly path?: string;
    /** What the script reads on its standard input. */
    readonly stdin?: string;
}

export interface FakeHostResult {
    /** stdout and stderr of the script, interleaved as it wrote them. */
    readonly out: string;
    /** The script's exit status. */
    readonly code: number;
}

/** One shell word that every host shell reads back as TEXT. */
function quote(text: string): string {
    return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A fake's body that prints LINES, one each, as they are; nothing for none. */
export function prints(lines: readonly string[]): string {
    return lines.length === 0 ? "true" : `printf '%s\\n' ${lines.map(quote).join(" ")}`;
}

/** What a fake tool answers to one argument list: lines it prints (status 0), or a bare status. */
export type Reply = readonly string[] | { readonly status: number };

function replyBody(r: Reply): string {
    return "status" in r ? `return ${r.status}` : prints(r);
}

/**
 * A fake's body that answers by its exact argument list (`"$*"`): `byArgs("ip", { "fou show":
 * ["port 5555 ipproto 4"] })` prints that listing for `ip fou show`. Any other call prints
 * `RUN ip ARGS` by default, so a test sees what the script would have changed, or gets `otherwise`.
 */
export function byArgs(tool: string, replies: Readonly<Record<string, Reply>>, otherwise: Reply | "record" = "record"): string {
    const cases = Object.entries(replies).map(([args, r]) => `  ${quote(args)}) ${replyBody(r)} ;;`);
    const rest = otherwise === "record" ? `echo "RUN ${tool} $*"` : replyBody(otherwise);
    return ['case "$*" in', ...cases, `  *) ${rest} ;;`, "esac"].join("\n");
}

/** The text a shell runs for RUN: fakes, PATH, then the script in a subshell with stderr on stdout. */
export function fakeHostText(run: FakeHostRun): string {
    const defs = Object.entries(run.fakes ?? {}).map(([name, body]) => {
        assert.match(name, /^[A-Za-z_][A-Za-z0-9_]*$/, `fake tool name ${JSON.stringify(name)}`);
        return `${name}() {\n${body}\n}`;
    });
    const set = run.set ?? "eu";
    return [
        ...defs,
        ...(run.path === undefined ? [] : [`PATH=${quote(run.path)}`]),
        "(",
        ...(set === "" ? [] : [`set -${set}`]),
        run.script,
        ") 2>&1",
    ].join("\n");
}

/**
 * Runs a script on the fake host under dash, bash and busybox sh; they must print the same and
 * exit the same. Anything the shell itself writes to stderr (outside the subshell: a fake that
 * does not parse, say) is a test error, not output.
 */
export function runOnFakeHost(run: FakeHostRun): FakeHostResult {
    const r = runInAll(fakeHostText(run), { input: run.stdin });
    assert.equal(r.stderr, "", `the shell wrote outside the script:\n${r.stderr}`);
    return { out: r.stdout, code: r.code };
}

export interface Expected {
    /** The exit status. */
    readonly code: number;
    /** The whole output (a string), or a pattern it matches. */
    readonly out?: string | RegExp;
    /** A pattern the output must not match. */
    readonly outLacks?: RegExp;
}

export interface Fixture extends Omit<FakeHostRun, "script"> {
    /** Shown after the table's title in the test name. */
    readonly name: string;
    /** Built when the test runs, so it may use what a `before` hook declared. */
    readonly script: () => string;
    readonly expect: Expected;
}

/** Checks a run against what a fixture expects; the message shows the whole run. */
export function assertRun(r: FakeHostResult, expect: Expected, what = ""): void {
    const shown = `${what ? `${what}: ` : ""}exit ${r.code}, output:\n${r.out}`;
    assert.equal(r.code, expect.code, shown);
    if (typeof expect.out === "string") assert.equal(r.out, expect.out, shown);
    else if (expect.out) assert.match(r.out, expect.out, shown);
    if (expect.outLacks) assert.doesNotMatch(r.out, expect.outLacks, shown);
}

/** Registers one test per fixture, named `TITLE: NAME`. */
export function fixtureTests(title: string, fixtures: readonly Fixture[]): void {
    const names = new Set<string>();
    for (const f of fixtures) {
        assert.ok(!names.has(f.name), `${title}: two fixtures named ${JSON.stringify(f.name)}`);
        names.add(f.name);
        test(`${title}: ${f.name}`, () => {
            const { name, script, expect, ...run } = f;
            assertRun(runOnFakeHost({ ...run, script: script() }), expect, name);
        });
    }
}
