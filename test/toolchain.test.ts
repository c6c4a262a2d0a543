import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { after, test } from "node:test";
import { REPO, TestStack } from "./integration/harness";

// The offline toolchain: setup.sh yields a CLI, the Node.js language host and the command
// plugin, and together they run the program. No VM is started: preview runs no command.

const stack = new TestStack("toolchain");
after(() => stack.remove());

test("setup.sh is idempotent and yields pulumi v3.248.0 with the command plugin 1.2.1", async () => {
    const t0 = Date.now();
    execFileSync(path.join(REPO, "scripts", "setup.sh"), { stdio: "inherit" });
    assert.ok(Date.now() - t0 < 30_000, "a warm setup.sh takes seconds");
    const v = await stack.ok(["version"]);
    assert.equal(v.stdout.trim(), "v3.248.0");
    const plugins = await stack.ok(["plugin", "ls"]);
    assert.match(plugins.stdout, /^command\s+resource\s+1\.2\.1\b/m);
});

test("pulumi preview of the program loads the engine, language host and command plugin offline", async () => {
    await stack.init({ localGateway: "203.0.113.1/24", localVms: [{ name: "k1", address: "203.0.113.151" }, { name: "k2", address: "203.0.113.152" }] });
    const r = await stack.ok(["preview", "--diff"]);
    const out = r.stdout;
    for (const expected of [
        "fou:local:LocalVms",
        "fou:index:HostPrep",
        "fou:index:FouTunnel",
        "fou:index:FouPort",
        "fou:index:IpipFouLink",
        "fou:index:Gwip",
        "fou:index:Route",
        "command:remote:Command",
        "command:local:Command",
    ]) {
        assert.ok(out.includes(expected), `preview mentions ${expected}:\n${out}`);
    }
    // The diff shows the real commands, with the private key kept out of it.
    assert.ok(out.includes("ip link add 'ftok2' type ipip remote '203.0.113.152' local '203.0.113.151'"), out);
    assert.ok(!out.includes("PRIVATE KEY"), "no private key in the preview");
});

test("bad config fails the preview with the key named, before any resource", async () => {
    await stack.setConfig({ port: 70000 });
    const r = await stack.pulumi(["preview"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /fou-tunnel:port must be a UDP port number from 1 to 65535 \(got 70000\)/);
    assert.doesNotMatch(r.stdout, /\+\s+command:/);
    await stack.setConfig({ port: 5555 });
});
