import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { ipipFouLinkObject } from "../../components/ipipFouLink";
import { withSudo } from "../../components/host";
import { fileHolds, script, sh, shq } from "../../components/shell";

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

/** Runs a script in a real shell and returns what it printed. */
function run(text: string): string {
    return execFileSync("/bin/sh", ["-c", text], { encoding: "utf8" });
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
    const stub = "ip() { if [ \"$1\" = link ] && [ \"$2\" = show ]; then return 1; fi; printf '<%s>' \"$@\"; echo; }\ncat() { echo 1472; }\n";
    const out = run(stub + "set -eu\n" + s.apply);
    assert.match(out, /^<link><add><x; touch \/tmp\/fou-pwned><type><ipip><remote><\$\(id\)><local><a'b><ttl><255><dev><eth 0><encap><fou><encap-sport><auto><encap-dport><5555>$/m);
    assert.match(out, /^<link><set><dev><x; touch \/tmp\/fou-pwned><up>$/m);
});

test("withSudo runs the script as root through sudo -n, and fails clearly when sudo wants a password", () => {
    const script = withSudo(`echo "it's me: $(id -u)"`);
    // A sudo that allows everything: runs `/bin/sh -c SCRIPT` with the script as one argument.
    const allowing = `sudo() { shift; if [ "$1" = true ]; then return 0; fi; "$@"; }\n`;
    assert.equal(run(allowing + script.replace("exec sudo", "sudo")), `it's me: ${process.getuid?.()}\n`);
    const refusing = 'sudo() { echo "sudo: a password is required" >&2; return 1; }\nhostname() { echo k9; }\nid() { echo deploy; }\n';
    assert.throws(
        () => execFileSync("/bin/sh", ["-c", refusing + script], { encoding: "utf8", stdio: "pipe" }),
        (e: unknown) => /fou-tunnel: k9: user deploy cannot use sudo without a password \(sudo -n\)/.test(String((e as { stderr: string }).stderr)),
    );
});

test("fileHolds: the file's first line is the value; another value or a missing file is false, quietly", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "fou-holds-"));
    try {
        const file = path.join(dir, "it's here");
        writeFileSync(file, "2\n");
        const run = (f: string, v: string | number) => execFileSync("/bin/sh", ["-c", `if ${fileHolds(f, v)}; then echo yes; else echo no; fi`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        assert.equal(run(file, 2), "yes\n");
        assert.equal(run(file, 1), "no\n");
        assert.equal(run(file, "2; echo injected"), "no\n");
        assert.equal(run(path.join(dir, "missing"), 2), "no\n");
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});
