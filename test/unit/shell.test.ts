import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { ipipFouLinkObject } from "../../components/ipipFouLink";
import { stepCommandLine, stepProgram, withSudo } from "../../components/host";
import { fileHolds, script, sh, shq } from "../../components/shell";
import { runOnFakeHost } from "./fakeHost";
import { HOST_SHELLS, runIn, runInAll } from "./hostShells";

const HOSTILE = [
    "; rm -rf /",
    "a b  c",
    "it's",
    "'",
    '"double" quotes',
    "$(touch /tmp/fou-pwned)",
    "`id`",
    "back\\slash",
    "new\nline",
    "*",
    "-n",
    "",
];

/** Runs a script under dash, bash and busybox sh; they must agree; returns what it printed, or throws on a failure. */
function run(text: string): string {
    const r = runInAll(text);
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout}${r.stderr}`);
    return r.stdout;
}

test("shq turns any value into exactly one literal shell word", () => {
    for (const v of HOSTILE) {
        // printf prints each argument in brackets, so word splitting or injection would show.
        assert.equal(run(`printf '[%s]' ${shq(v)}`), `[${v}]`, `value ${JSON.stringify(v)}`);
    }
});

test("sh quotes every interpolated value and nothing else", () => {
    assert.equal(sh`ip link del dev ${"ftok2"}`, "ip link del dev 'ftok2'");
    assert.equal(sh`x ${5555} ${"it's"}`, "x '5555' 'it'\\''s'");
    const words = HOSTILE.map((v) => sh`${v}`).join(" ");
    assert.equal(run(`printf '[%s]' ${words}`), HOSTILE.map((v) => `[${v}]`).join(""));
});

test("script starts with set -eu so the first failure stops it", () => {
    assert.throws(() => run(script("false", "echo reached")));
    assert.equal(run(script("echo one", "echo two")), "one\ntwo\n");
});

test("hostile values reach ip as single arguments, never as shell syntax", () => {
    // A stub `ip` records its arguments; the link script must pass each value as one argument.
    const s = ipipFouLinkObject({
        ifname: "x; touch /tmp/fou-pwned",
        remote: "$(id)",
        local: "a'b",
        device: "eth 0",
        port: 5555,
        ttl: 255,
    });
    const r = runOnFakeHost({ script: s.apply, fakes: { ip: `if [ "$1" = link ] && [ "$2" = show ]; then return 1; fi; printf '<%s>' "$@"; echo`, cat: "echo 1472" } });
    assert.equal(r.code, 0, r.out);
    const out = r.out;
    assert.match(out, /^<link><add><x; touch \/tmp\/fou-pwned><type><ipip><remote><\$\(id\)><local><a'b><ttl><255><dev><eth 0><encap><fou><encap-sport><auto><encap-dport><5555>$/m);
    assert.match(out, /^<link><set><dev><x; touch \/tmp\/fou-pwned><up>$/m);
});

test("withSudo runs the script as root through sudo -n, and fails clearly when sudo wants a password", () => {
    const script = withSudo(`echo "it's me: $(id -u)"`);
    // A sudo that allows everything: runs `/bin/sh -c SCRIPT` with the script as one argument.
    const allowing = `sudo() { shift; if [ "$1" = true ]; then return 0; fi; "$@"; }\n`;
    assert.equal(run(allowing + script.replace("exec sudo", "sudo")), `it's me: ${process.getuid?.()}\n`);
    const refusing = 'sudo() { echo "sudo: a password is required" >&2; return 1; }\nhostname() { echo k9; }\nid() { echo deploy; }\n';
    for (const shell of HOST_SHELLS) {
        const r = runIn(shell, refusing + script);
        assert.equal(r.code, 1, shell.name);
        assert.match(r.stderr, /fou-tunnel: k9: user deploy cannot use sudo without a password \(sudo -n\)/, shell.name);
    }
});

test("fileHolds: the file holds the value; another value or a missing file is false, quietly", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "fou-holds-"));
    try {
        const file = path.join(dir, "it's here");
        writeFileSync(file, "2\n");
        const holds = (f: string, v: string | number) => run(`if ${fileHolds(f, v)}; then echo yes; else echo no; fi`);
        assert.equal(holds(file, 2), "yes\n");
        assert.equal(holds(file, 1), "no\n");
        assert.equal(holds(file, "2; echo injected"), "no\n");
        assert.equal(holds(path.join(dir, "missing"), 2), "no\n");
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test("fileHolds reads integer sysctls whole in every shell (dash's and busybox's read gets one digit of them)", () => {
    // Values of this machine's kernel, as a host's would be: one digit, two digits, two numbers.
    for (const [file, want] of [
        ["/proc/sys/net/ipv4/ip_forward", undefined],
        ["/proc/sys/net/ipv4/ip_default_ttl", undefined],
        ["/proc/sys/net/ipv4/conf/lo/rp_filter", undefined],
    ] as const) {
        const value = want ?? run(`cat ${shq(file)}`).trim();
        assert.equal(run(`if ${fileHolds(file, value)}; then echo yes; else echo no; fi`), "yes\n", `${file} = ${value}`);
        assert.equal(run(`if ${fileHolds(file, `${value}0`)}; then echo yes; else echo no; fi`), "no\n", `${file} != ${value}0`);
    }
});

test("a step's program: the command line is short, the action picks create or delete, stdin reaches no command", () => {
    assert.equal(stepCommandLine("create", false), "/bin/sh -s create");
    assert.equal(stepCommandLine("delete", true), "sudo -n /bin/sh -s delete");
    // `cat` would print the rest of the program if the functions read the shell's stdin.
    const program = stepProgram({ create: "set -eu\necho made; cat", delete: "set -eu\necho undone; cat" });
    // An argument after the action (a drift probe's id) is not read.
    for (const shell of HOST_SHELLS) {
        const r = runStdin(shell, "create", program, ["drift-probe-1234"]);
        assert.equal(r.stdout, "made\n", shell.name);
    }
    for (const shell of HOST_SHELLS) {
        for (const [action, out] of [["create", "made\n"], ["delete", "undone\n"]] as const) {
            const r = runStdin(shell, action, program);
            assert.equal(r.code, 0, `${shell.name} ${action}: ${r.stderr}`);
            assert.equal(r.stdout, out, `${shell.name} ${action}`);
        }
        const none = runStdin(shell, "delete", stepProgram({ create: "echo made" }));
        assert.equal(none.code, 2, shell.name);
        assert.match(none.stderr, /fou-tunnel: this step has no action delete/, shell.name);
        // A program cut short (a connection lost mid-text) runs none of its steps.
        for (const at of [program.indexOf("echo made") + 4, program.indexOf("fou_delete") + 20, program.indexOf("case ${1-}") + 12, program.indexOf("esac")]) {
            const cut = runStdin(shell, "create", program.slice(0, at));
            assert.doesNotMatch(cut.stdout, /made|undone/, `${shell.name}, cut at ${at}`);
        }
    }
});

/** `SHELL -s ACTION` with PROGRAM on stdin, as the command plugin runs a step. */
function runStdin(shell: (typeof HOST_SHELLS)[number], action: string, program: string, more: string[] = []) {
    const r = spawnSync(shell.argv[0], [...shell.argv.slice(1), "-s", action, ...more], { input: program, encoding: "utf8", timeout: 30_000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
