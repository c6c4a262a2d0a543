import assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FouInputError } from "../../lib/validate";
import { TopologyOptions, loadTopology } from "../../topology";

/**
 * loadTopology on paths a user may type by mistake: devices, FIFOs, directories, big files,
 * files that are not topologies (whose content must not reach the console), and files with
 * thousands of problems.
 */

const LOCAL: TopologyOptions = { kind: "local", underlay: "198.51.100.1/24" };

function tempDir(): string {
    return mkdtempSync(join(tmpdir(), "topology-file-"));
}

/** The FouInputError message of loading `path`; fails the test if it loads. */
function refusal(path: string): string {
    try {
        loadTopology(path, LOCAL);
    } catch (e) {
        assert.ok(e instanceof FouInputError, `not a FouInputError: ${String(e)}`);
        return e.message;
    }
    assert.fail(`${path} loaded`);
}

/** A random string that stands for a secret: it must never appear in a message. */
function secret(): string {
    return "s3cr3t" + randomBytes(12).toString("hex");
}

/** Asserts the message is one line and quotes none of `content`'s lines, keys or values. */
function assertQuotesNothing(message: string, content: string, ...secrets: string[]): void {
    assert.equal(message.split("\n").length, 1, message);
    for (const s of secrets) {
        assert.ok(!message.includes(s), `the secret is in: ${message}`);
    }
    for (const line of content.split("\n").filter((l) => l.trim())) {
        for (const part of line.split(/[:\s[\]{},-]+/).filter((p) => p.length >= 4)) {
            assert.ok(!message.includes(part), `"${part}" of the file is in: ${message}`);
        }
    }
}

function writeFile(name: string, content: string): string {
    const path = join(tempDir(), name);
    writeFileSync(path, content);
    return path;
}

test("/dev/zero is refused at once as a character device, also through a symlink", () => {
    const start = Date.now();
    assert.equal(refusal("/dev/zero"), "/dev/zero: cannot read the topology file: it is a character device");
    const link = join(tempDir(), "zero.yaml");
    symlinkSync("/dev/zero", link);
    assert.equal(refusal(link), `${link}: cannot read the topology file: it is a character device`);
    assert.ok(Date.now() - start < 5000, `took ${Date.now() - start} ms`);
});

test("a FIFO is refused without waiting for a writer", () => {
    const fifo = join(tempDir(), "pipe.yaml");
    execFileSync("mkfifo", [fifo]);
    // A writer after 3 s unblocks a reader that would wait, so a regression fails instead of hanging.
    const writer: ChildProcess = spawn(process.execPath, ["-e", "setTimeout(() => require('fs').writeFileSync(process.argv[1], ''), 3000)", fifo], {
        stdio: "ignore",
    });
    try {
        const start = Date.now();
        assert.equal(refusal(fifo), `${fifo}: cannot read the topology file: it is a FIFO (named pipe)`);
        assert.ok(Date.now() - start < 2000, `took ${Date.now() - start} ms`);
    } finally {
        writer.kill();
    }
});

test("a directory is refused as such", () => {
    const dir = tempDir();
    assert.equal(refusal(dir), `${dir}: cannot read the topology file: it is a directory`);
});

test("a file over 1 MiB is refused with its size, unread", () => {
    const big = writeFile("big.yaml", "# " + "x".repeat(2 * 1024 * 1024 - 3) + "\n");
    assert.equal(refusal(big), `${big}: cannot read the topology file: it is 2 MiB; a topology file is at most 1 MiB`);
    const half = writeFile("half.yaml", "x".repeat(1.5 * 1024 * 1024));
    assert.equal(refusal(half), `${half}: cannot read the topology file: it is 1.5 MiB; a topology file is at most 1 MiB`);
    const justOver = writeFile("over.yaml", "x".repeat(1024 * 1024 + 1));
    assert.equal(refusal(justOver), `${justOver}: cannot read the topology file: it is 1048577 bytes; a topology file is at most 1 MiB`);
});

test("a shadow-like file is refused in one line that quotes none of it", () => {
    const s = secret();
    const content = [
        "root:*:20228:0:99999:7:::",
        "daemon:*:20228:0:99999:7:::",
        `alice:$6$${s}:20228:0:99999:7:::`,
        "bob:!:20228:0:99999:7:::",
        "",
    ].join("\n");
    const path = writeFile("shadow", content);
    const message = refusal(path);
    assert.match(message, /: not a topology file: none of its 4 top-level keys is a topology key/);
    assertQuotesNothing(message, content, s, "root", "20228", "99999");
});

test("a YAML list, a mapping of unknown keys, a single value and broken YAML are refused in one line each", () => {
    const s = secret();
    const files: [string, string, RegExp][] = [
        ["list.yaml", `- name: admin\n- password: ${s}\n`, /its top level is a list, not a mapping/],
        ["map.yaml", `database:\n  password: ${s}\napi_token: ${s}\n`, /none of its 2 top-level keys is a topology key/],
        ["value.txt", `the password is ${s}\n`, /its top level is a single value, not a mapping/],
        ["broken.txt", `key: "${s}\n  other: [unclosed\n`, /it does not parse as YAML/],
        ["empty.yaml", "# nothing\n", /it is empty/],
    ];
    for (const [name, content, why] of files) {
        const path = writeFile(name, content);
        const message = refusal(path);
        assert.ok(message.startsWith(`${path}: not a topology file: `), message);
        assert.match(message, why);
        assert.match(message, /a topology file is a YAML mapping with the keys hosts and tunnels/);
        assertQuotesNothing(message, content, s, "password", "admin", "database", "api_token");
    }
});

test("a topology file keeps its file:line:col messages, YAML syntax errors included", () => {
    const bad = writeFile("bad.yaml", "hosts: [{name: k1}, {name: k2}]\ntunnels:\n  - hosts: [k1, k2]\n    ttl: 0\n    gwip: x\n");
    assert.equal(
        refusal(bad),
        [
            "invalid input:",
            `${bad}:4:10: tunnels[0].ttl: must be an integer from 1 to 255 (got 0)`,
            `${bad}:5:5: tunnels[0].gwip: unknown key (did you mean gwips?); tunnel keys are hosts, name, protocol, encap, port, sport, csum, mtu, ttl, persist, gwips, interfaces, routes`,
        ].join("\n  - "),
    );
    const broken = writeFile("broken.yaml", "hosts: [k1, k2\ntunnels: []\n");
    assert.match(refusal(broken), new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2:1: YAML syntax: Flow sequence .* end with a \\]$`));
});

test("20,000 bad tunnels give 50 problems and one line with how many more", () => {
    const tunnels = Array.from({ length: 20_000 }, (_, i) => `  - {hosts: [k1, k2], name: t${i}, ttl: 0}\n`);
    const path = writeFile("many.yaml", "hosts: [{name: k1}, {name: k2}]\ntunnels:\n" + tunnels.join(""));
    const lines = refusal(path).split("\n");
    assert.ok(lines.length <= 200, `${lines.length} lines`);
    assert.equal(lines.length, 52, "the heading, 50 problems and the count");
    assert.match(lines[1], new RegExp(`^  - ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:`));
    assert.match(lines[51], /^ {2}- … and \d+ more$/);
    const more = Number(/(\d+) more/.exec(lines[51])?.[1]);
    assert.ok(more >= 20_000 - 50, `${more} more`);
});

test("a valid topology still loads, also through a symlink", () => {
    const t = loadTopology("topologies/guide.yaml", LOCAL);
    assert.deepEqual(
        t.hosts.map((h) => h.name),
        ["k1", "k2"],
    );
    const link = join(tempDir(), "guide.yaml");
    symlinkSync(join(process.cwd(), "topologies/guide.yaml"), link);
    assert.equal(loadTopology(link, LOCAL).tunnels.length, t.tunnels.length);
});
