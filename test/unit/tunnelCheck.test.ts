/**
 * The tunnel check's script, run by each host shell (dash, bash, busybox sh: every test once per
 * shell, in a directory of its own) with stand-ins for ping and tcpdump on PATH: what it
 * reports, that it rounds again while the kernel still fails sends after ICMP errors from the
 * peer (ping -w stops at the first error), and that it fails, naming the numbers, when nothing
 * comes back.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { HOST_SHELLS, HostShell, runIn } from "./hostShells";
import { tunnelCheckScript, tunnelProbeCheck } from "../../components/tunnelCheck";

const dir = mkdtempSync(path.join(tmpdir(), "fou-check-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const settings = { device: "eth0", gwip: "10.10.10.1", peerGwip: "10.10.10.2", local: "198.51.100.151", remote: "198.51.100.152", port: 5555 };

/**
 * The script with each stand-in in BIN also defined as a function that runs it. PATH alone does
 * not reach them under every shell: Debian's busybox-static shell runs its own applets (ping,
 * date, sleep) before it searches PATH, and only a function comes before an applet. The
 * environment of a run also sets HOME to BIN: bash, given a socket as stdin (Node's pipes) and no
 * SHLVL, would otherwise source the machine's ~/.bashrc, whose complaints land on stderr.
 */
function withStubs(bin: string, text: string): string {
    const names = readdirSync(bin).filter((f) => ["ping", "tcpdump", "date", "sleep"].includes(f));
    return [...names.map((f) => `${f}() { '${path.join(bin, f)}' "$@"; }`), text].join("\n");
}

/** A ping whose Nth call prints the Nth line of $PINGS ("received errors"); calls are counted in $dir/calls. */
function stubs(bin: string): void {
    writeFileSync(path.join(bin, "ping"), [
        "#!/bin/sh",
        'n=$(($(cat "$CALLS" 2>/dev/null || echo 0) + 1)); echo "$n" >"$CALLS"',
        'line=$(printf "%s\\n" "$PINGS" | sed -n "${n}p"); [ -n "$line" ] || line=$(printf "%s\\n" "$PINGS" | tail -n 1)',
        'set -- $line',
        'if [ "$2" -gt 0 ]; then echo "3 packets transmitted, $1 received, +$2 errors, 100% packet loss, time 1ms"; else echo "3 packets transmitted, $1 received, time 400ms"; fi',
        '[ "$1" -ge 1 ]',
    ].join("\n"));
    writeFileSync(path.join(bin, "tcpdump"), [
        "#!/bin/sh",
        'echo "listening on eth0" >&2',
        'echo "12:00:00.1 IP 198.51.100.151.40000 > 198.51.100.152.5555: UDP, length 84"',
        'echo "12:00:00.2 IP 198.51.100.152.40001 > 198.51.100.151.5555: UDP, length 84"',
    ].join("\n"));
    for (const f of ["ping", "tcpdump"]) chmodSync(path.join(bin, f), 0o755);
}

/** Registers the test NAME once per host shell: `NAME (dash)`, `NAME (bash)`, `NAME (busybox sh)`. */
function eachShell(name: string, fn: (shell: HostShell) => void): void {
    for (const shell of HOST_SHELLS) test(`${name} (${shell.name})`, () => fn(shell));
}

function runCheck(shell: HostShell, name: string, pings: string[], fakeClock = false) {
    const bin = mkdtempSync(path.join(dir, `${name}-`));
    stubs(bin);
    if (fakeClock) {
        // Each call of date +%s is 10 s later: the 40 s deadline passes after a few rounds.
        writeFileSync(path.join(bin, "date"), [
            "#!/bin/sh",
            'if [ "$1" = "+%s" ]; then t=$(($(cat "$CLOCK" 2>/dev/null || echo 1000) + 10)); echo "$t" >"$CLOCK"; echo "$t"; else exec /bin/date "$@"; fi',
        ].join("\n"));
        writeFileSync(path.join(bin, "sleep"), "#!/bin/sh\nexit 0\n");
        chmodSync(path.join(bin, "date"), 0o755);
        chmodSync(path.join(bin, "sleep"), 0o755);
    }
    const calls = path.join(bin, "calls");
    const r = runIn(shell, withStubs(bin, tunnelCheckScript(settings)), {
        env: { PATH: `${bin}:/usr/bin:/bin`, HOME: bin, PINGS: pings.join("\n"), CALLS: calls, CLOCK: path.join(bin, "clock") },
    });
    const last = r.stdout.trim().split("\n").pop() ?? "{}";
    return { code: r.code, result: JSON.parse(last), stderr: r.stderr, calls: Number(readFileSync(calls, "utf8")) };
}

eachShell("a healthy tunnel: one round, all three replies, the UDP packets both ways", (shell) => {
    const r = runCheck(shell, "healthy", ["3 0"]);
    assert.equal(r.code, 0, r.stderr);
    // Nothing on stderr (it shows in the up's output): not even the capture's log read too early.
    assert.equal(r.stderr, "");
    assert.equal(r.calls, 1);
    assert.deepEqual(
        { sent: r.result.sent, received: r.result.received, out: r.result.udpToPeer, in: r.result.udpFromPeer, rounds: r.result.rounds },
        { sent: 3, received: 3, out: 1, in: 1, rounds: 1 },
    );
    assert.match(r.result.sample, /198\.51\.100\.151\.40000 > 198\.51\.100\.152\.5555: UDP/);
});

eachShell("sends failed locally after ICMP errors (ping -w stops at the first): rounds again until all three come back", (shell) => {
    const r = runCheck(shell, "errwindow", ["0 1", "0 1", "2 0", "3 0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.calls, 4);
    assert.equal(r.result.rounds, 4);
    assert.equal(r.result.received, 3);
});

eachShell("nothing comes back: it gives up at the 40 s deadline and fails with the numbers", (shell) => {
    const r = runCheck(shell, "dead", ["0 0"], true);
    assert.notEqual(r.code, 0);
    assert.ok(r.calls >= 2 && r.calls <= 5, `rounds until the deadline: ${r.calls}`);
    assert.equal(r.result.received, 0);
    assert.match(r.stderr, /tunnel check failed on .*: 0\/3 pings from 10\.10\.10\.1 to 10\.10\.10\.2 answered, UDP\/5555 packets out 1, in 1/);
});

eachShell("counts only this tunnel's packets, reads busybox's ping summary, keeps the sample valid JSON", (shell) => {
    const bin = mkdtempSync(path.join(dir, "formats-"));
    writeFileSync(path.join(bin, "ping"), "#!/bin/sh\necho 'PING 10.10.10.2 (10.10.10.2): 56 data bytes'\necho '4 packets transmitted, 3 packets received, 25% packet loss'\n");
    writeFileSync(path.join(bin, "tcpdump"), [
        "#!/bin/sh",
        'echo "tcpdump: verbose output suppressed" >&2',
        'echo "listening on eth0, link-type EN10MB" >&2',
        // out to the peer (twice), in from the peer (once), and another peer's packet on the shared port
        `echo '12:00:00.1 IP 198.51.100.151.40000 > 198.51.100.152.5555: UDP, length 84 "x\\\\y"'`,
        'echo "12:00:00.2 IP 198.51.100.152.40001 > 198.51.100.151.5555: UDP, length 84"',
        'echo "12:00:00.3 IP 198.51.100.151.40000 > 198.51.100.152.5555: UDP, length 84"',
        'echo "12:00:00.4 IP 198.51.100.153.40002 > 198.51.100.151.5555: UDP, length 84"',
    ].join("\n"));
    for (const f of ["ping", "tcpdump"]) chmodSync(path.join(bin, f), 0o755);
    const r = runIn(shell, withStubs(bin, tunnelCheckScript(settings)), { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: bin } });
    const result = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
        { sent: result.sent, received: result.received, out: result.udpToPeer, in: result.udpFromPeer },
        { sent: 4, received: 3, out: 2, in: 1 },
    );
    assert.equal(result.sample, "IP 198.51.100.151.40000 > 198.51.100.152.5555: UDP, length 84 xy");
});

eachShell("the refresh probe passes when a round of pings is answered within three rounds, and names the tunnel when none is", (shell) => {
    const probe = (name: string, pings: string[]) => {
        const bin = mkdtempSync(path.join(dir, `${name}-`));
        stubs(bin);
        writeFileSync(path.join(bin, "sleep"), "#!/bin/sh\nexit 0\n");
        chmodSync(path.join(bin, "sleep"), 0o755);
        const calls = path.join(bin, "calls");
        const r = runIn(shell, withStubs(bin, tunnelProbeCheck("10.10.10.1", "10.10.10.2")), {
            env: { PATH: `${bin}:/usr/bin:/bin`, HOME: bin, PINGS: pings.join("\n"), CALLS: calls },
        });
        return { code: r.code, out: r.stdout.trim(), calls: Number(readFileSync(calls, "utf8")) };
    };
    assert.deepEqual(probe("healthy", ["3 0"]), { code: 0, out: "", calls: 1 });
    // Local send failures after ICMP errors: two rounds of errors, then answers.
    assert.deepEqual(probe("errors", ["0 3", "0 3", "3 0"]), { code: 0, out: "", calls: 3 });
    assert.deepEqual(probe("silent", ["0 0"]), { code: 1, out: "no ping reply from 10.10.10.2 through the tunnel", calls: 3 });
});
