/**
 * The poll that waits for an EC2 host and finds its device: its command and connection as
 * declared, its bounded dials, and its script run under each host shell (a stand-in cloud-init,
 * this machine's own addresses, a hostile address).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { HOST_SHELLS, runIn, runInAll } from "./hostShells";
import { plain } from "./secretInputs";
import { FouInputError } from "../../lib/validate";
import { AWS_POLL_DIALS, AWS_POLL_TIMEOUTS, parsePollOutput, pollScript } from "../../hosts/aws";
import { SSH_DIALS } from "../../lib/sshLogin";
import { declareAwsHosts, options, res } from "./awsFixtures";

declareAwsHosts();

test("each poll asks its own host for the device holding its private address, quoted", () => {
    const poll = res("aws-k2-poll").inputs;
    assert.equal(poll.create, pollScript("172.31.5.12"));
    assert.match(poll.create, /^fou_private='172\.31\.5\.12'$/m);
    assert.match(poll.create, /ip -o -4 addr show to "\$fou_private\/32"/);
    assert.deepEqual(poll.triggers, ["aws-k2-id"]);
    assert.deepEqual(
        [plain(poll.connection).host, plain(poll.connection).user, plain(poll.connection).hostKey],
        ["198.51.100.12", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey"],
    );
    assert.ok(Object.keys(poll.connection).includes("4dabf18193072939515e22adb298388d"), "the poll's connection is secret");
    // The poll runs as admin itself; the steps go through sudo.
    assert.ok(!poll.create.includes("sudo"));
    const prep = res("k1-prep-kernel").inputs;
    assert.equal(prep.createLine, "sudo -n /bin/sh -s create");
    assert.equal(prep.deleteLine, "sudo -n /bin/sh -s delete");
    assert.match(prep.create, /^set -eu$/m);
    assert.deepEqual([plain(prep.connection).user, plain(prep.connection).hostKey], ["admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey"]);
});

test("no SSH wait is unbounded: the poll dials a bounded number of times within its timeouts, the tunnel steps a few", async () => {
    assert.deepEqual(SSH_DIALS, { dialErrorLimit: 5, perDialTimeout: 10 });
    for (const h of ["k1", "k2", "k3"]) {
        const poll = plain(res(`aws-${h}-poll`).inputs.connection);
        assert.deepEqual([poll.dialErrorLimit, poll.perDialTimeout], [AWS_POLL_DIALS.dialErrorLimit, AWS_POLL_DIALS.perDialTimeout], h);
        assert.ok(poll.dialErrorLimit > 0, "a limit of -1 would dial forever");
        assert.deepEqual(options.get(`aws-${h}-poll`)?.customTimeouts, AWS_POLL_TIMEOUTS, h);
        const step = plain(res(`${h === "k3" ? "k1" : h}-prep-kernel`).inputs.connection);
        assert.deepEqual([step.dialErrorLimit, step.perDialTimeout], [5, 10]);
    }
    // All the dials of the poll fit in its create timeout (dials at most 15 s each, back-off at most 5 s between).
    const minutes = Number(String(AWS_POLL_TIMEOUTS.create).replace(/m$/, ""));
    assert.ok((AWS_POLL_DIALS.dialErrorLimit * (AWS_POLL_DIALS.perDialTimeout + 5)) / 60 <= minutes);
});

test("the poll script finds this machine's device for its address, and the default route's for a foreign one", (t) => {
    let addrs: string;
    try {
        addrs = execFileSync("ip", ["-o", "-4", "addr", "show", "scope", "global"], { encoding: "utf8" });
    } catch {
        t.skip("no ip(8) here");
        return;
    }
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//m.exec(addrs);
    if (!m) {
        t.skip("no global IPv4 address here");
        return;
    }
    // Under dash, bash and busybox sh, which must agree.
    const poll = (address: string) => {
        const r = runInAll(pollScript(address));
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
    };
    assert.equal(poll(m[2]), `device=${m[1]}\n`);
    const dflt = / dev (\S+)/.exec(execFileSync("ip", ["-o", "-4", "route", "show", "default"], { encoding: "utf8" }))?.[1];
    if (dflt) {
        assert.equal(poll("192.0.2.254"), `device=${dflt}\n`);
    }
    // A hostile address stays one quoted argument: it matches nothing and runs nothing.
    const hostile = "1.2.3.4/32; touch /tmp/fou-aws-poll-pwned #";
    runInAll(pollScript(hostile) + " || true");
    assert.throws(() => execFileSync("test", ["-e", "/tmp/fou-aws-poll-pwned"]));
});

// The stand-in's directory is each shell's own.
for (const shell of HOST_SHELLS) {
    test(`the poll waits for cloud-init and fails, naming its status, unless it finished the user data cleanly (${shell.name})`, (t) => {
        const bin = mkdtempSync(path.join(tmpdir(), "fou-aws-ci-"));
        t.after(() => rmSync(bin, { recursive: true, force: true }));
        const run = (status: string) => {
            writeFileSync(path.join(bin, "cloud-init"), `#!/bin/sh\n[ "$1 $2" = "status --wait" ] || exit 9\nprintf '....\\n${status}\\n'\n`, { mode: 0o755 });
            return runIn(shell, pollScript("127.0.0.1"), { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
        };
        const done = run("status: done");
        assert.equal(done.code, 0, done.stderr);
        assert.equal(done.stdout, "device=lo\n");
        const failed = run("status: error");
        assert.equal(failed.code, 1);
        assert.equal(failed.stdout, "");
        assert.match(failed.stderr, /^fou-tunnel: .*: cloud-init did not finish the user data cleanly \(status: error\): see \/var\/log\/cloud-init\.log/);
    });
}

test("parsePollOutput takes the device line and refuses anything but an interface name", () => {
    assert.equal(parsePollOutput("Welcome\ndevice=ens5"), "ens5");
    for (const bad of ["", "device=", "device=ens5; reboot", "device=a234567890123456"]) {
        assert.throws(() => parsePollOutput(bad), FouInputError, bad);
    }
});
