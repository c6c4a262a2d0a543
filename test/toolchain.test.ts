import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { ExampleStack, installExample } from "./integration/example";
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
    await stack.init({ localGateway: "198.51.100.1/24", localVms: [{ name: "k1", address: "198.51.100.151" }, { name: "k2", address: "198.51.100.152" }] });
    const r = await stack.ok(["preview", "--json"]);
    const steps = JSON.parse(r.stdout).steps as { op: string; newState: { type: string; urn: string; inputs: Record<string, any> } }[];
    const types = new Set(steps.map((s) => s.newState.type));
    for (const expected of [
        "fou:local:LocalVms",
        "fou:index:FouTopology",
        "fou:index:HostPrep",
        "fou:index:FouTunnel",
        "fou:index:FouPort",
        "fou:index:IpipFouLink",
        "fou:index:Gwip",
        "fou:index:Route",
        "fou:index:TunnelCheck",
        "command:remote:Command",
        "command:local:Command",
    ]) {
        assert.ok(types.has(expected), `preview creates a ${expected}`);
    }
    assert.ok(steps.every((s) => s.op === "create"));
    // The plan carries the real commands, and the connection (it holds the key) stays secret.
    const link = steps.find((s) => s.newState.urn.endsWith("::fou-k1-k2-k1-link"));
    assert.ok(link, "k1's link command is planned");
    // The step's command line, and its program on stdin, known in a preview of a new stack.
    assert.equal(link.newState.inputs.create, "/bin/sh -s create");
    assert.match(
        link.newState.inputs.stdin,
        /^ip link add 'ftok2' type ipip remote '198\.51\.100\.152' local '198\.51\.100\.151' ttl '255' dev 'eth0' encap fou encap-sport auto encap-dport '5555'$/m,
    );
    assert.ok(!r.stdout.includes("PRIVATE KEY"), "no private key in the preview");
});

test("a local stack's program does not load @pulumi/aws (only an aws stack needs it)", async () => {
    // A hook in the program's node records, as it exits, which packages it had loaded.
    const dir = mkdtempSync(path.join(tmpdir(), "fou-loaded-"));
    try {
        const out = path.join(dir, "loaded.json");
        const hook = path.join(dir, "hook.js");
        writeFileSync(
            hook,
            [
                'if ((process.argv[1] || "").includes("cmd/run")) process.on("exit", () => {',
                "  const loaded = Object.keys(require.cache);",
                "  const has = (p) => loaded.some((f) => f.includes(`/node_modules/${p}/`));",
                `  require("fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify({ aws: has("@pulumi/aws"), command: has("@pulumi/command") }));`,
                "});",
            ].join("\n"),
        );
        const r = await stack.pulumi(["preview"], undefined, { NODE_OPTIONS: `--require ${hook}` });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        // The hook saw the program's packages (@pulumi/command), and no @pulumi/aws among them.
        assert.deepEqual(JSON.parse(readFileSync(out, "utf8")), { aws: false, command: true });
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test("bad config fails the preview with the key named, before any resource", async () => {
    await stack.setConfig({ port: 70000 });
    const r = await stack.pulumi(["preview"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /fou-tunnel:port must be a UDP port number from 1 to 65535 \(got 70000\)/);
    assert.doesNotMatch(r.stdout, /\+\s+command:/);
    await stack.setConfig({ port: 5555 });
});

test("a topology file previews every tunnel; a broken one fails naming file, line and rule", async () => {
    await stack.setConfig({ localVms: undefined, port: undefined, topology: "topologies/mesh3.yaml" });
    const r = await stack.ok(["preview", "--json"]);
    const urns = (JSON.parse(r.stdout).steps as { newState: { urn: string } }[]).map((s) => s.newState.urn);
    for (const tunnel of ["k1-k2", "k1-k3", "k2-k3"]) {
        assert.ok(urns.some((u) => u.endsWith(`fou:index:FouTunnel::fou-${tunnel}`)), tunnel);
    }
    assert.equal(urns.filter((u) => u.endsWith("fou:index:FouPort::fou-k3-gue-5556")).length, 1, "one shared port on k3");

    const bad = path.join(stack.dir, "bad.yaml");
    writeFileSync(bad, "hosts:\n  - name: k1\n  - name: k2\ntunnels:\n  - hosts: [k1, k2]\n    port: 70000\n");
    await stack.setConfig({ topology: bad });
    const b = await stack.pulumi(["preview"]);
    assert.notEqual(b.code, 0);
    assert.ok((b.stdout + b.stderr).includes(`${bad}:6:11: tunnels[0].port: must be a UDP port number from 1 to 65535 (got 70000)`), b.stdout + b.stderr);
    assert.doesNotMatch(b.stdout, /\+\s+command:/);
});

test("a far end previews as an output, with one VM and nothing declared for it", async () => {
    const far = path.join(stack.dir, "far.yaml");
    // The far end is this machine, the bridge's gateway: a tunnel from a VM to the host running pulumi.
    writeFileSync(far, "hosts:\n  - name: k1\n  - name: r1\n    external: {address: 198.51.100.1}\ntunnels:\n  - hosts: [k1, r1]\n");
    await stack.setConfig({ localVms: undefined, port: undefined, topology: far });
    const r = await stack.ok(["preview", "--json"]);
    const urns = (JSON.parse(r.stdout).steps as { newState: { urn: string } }[]).map((s) => s.newState.urn.split("::").pop()!);
    assert.ok(urns.includes("local-k1") && urns.includes("fou-k1-r1-k1-link"), urns.join(" "));
    assert.deepEqual(urns.filter((u) => /^local-r1|^fou-r1-|^fou-k1-r1-r1/.test(u)), []);
    const text = await stack.ok(["preview"]);
    assert.match(text.stdout, /externalEnds *: \{/);
    assert.ok(text.stdout.includes(`"ip link add 'ftok1' type ipip remote '198.51.100.151' local '198.51.100.1' ttl '255' encap fou encap-sport auto encap-dport '5555'"`), text.stdout);
});

test("the library installs into another program, and `pulumi preview` of examples/existing-hosts runs offline", async () => {
    const dir = installExample();
    const example = new ExampleStack(dir, "example");
    try {
        // What npm installed is the packed library: built JavaScript and declarations, no sources.
        const pkg = path.join(dir, "node_modules", "fou-tunnel");
        assert.deepEqual(readdirSync(pkg).sort(), ["README.md", "bin", "package.json"]);
        assert.deepEqual(readdirSync(path.join(pkg, "bin")).sort(), ["components", "lib", "topology"]);
        const files = readdirSync(path.join(pkg, "bin", "components"));
        assert.ok(files.includes("index.js") && files.includes("index.d.ts") && files.includes("sshHost.d.ts"), files.join(" "));
        assert.ok(files.every((f) => f.endsWith(".js") || f.endsWith(".d.ts") || f === "sh"), files.join(" "));
        // The hosts' shell library travels beside the modules that read it.
        assert.deepEqual(readdirSync(path.join(pkg, "bin", "components", "sh")).sort(), readdirSync(path.join(REPO, "components", "sh")).sort());
        assert.equal(readdirSync(path.join(dir, "node_modules", "@pulumi")).filter((d) => d === "pulumi").length, 1);
        // The example type-checks against the declarations.
        execFileSync(path.join(dir, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", dir], { stdio: "inherit" });

        const keys = mkdtempSync(path.join(tmpdir(), "fou-example-keys-"));
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "example", "-f", path.join(keys, "id")]);
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "host", "-f", path.join(keys, "host")]);
        const hostKey = readFileSync(path.join(keys, "host.pub"), "utf8").trim();
        const hosts = [
            { name: "k1", address: "198.51.100.161", hostKey, device: "eth0" },
            { name: "k2", address: "198.51.100.162", hostKey, device: "eth0" },
        ];
        await example.init({ hosts }, readFileSync(path.join(keys, "id"), "utf8"));
        rmSync(keys, { recursive: true, force: true });
        const r = await example.ok(["preview", "--json"]);
        const steps = JSON.parse(r.stdout).steps as { op: string; newState: { type: string; urn: string; inputs: Record<string, any> } }[];
        const types = new Set(steps.map((s) => s.newState.type));
        for (const t of ["fou:index:SshHost", "fou:index:HostPrep", "fou:index:FouTunnel", "fou:index:FouPort", "fou:index:IpipFouLink", "fou:index:Gwip", "fou:index:Route", "fou:index:TunnelCheck", "command:remote:Command"]) {
            assert.ok(types.has(t), `preview creates a ${t}`);
        }
        assert.ok(steps.every((s) => s.op === "create"));
        const link = steps.find((s) => s.newState.urn.endsWith("::k1-k2-k1-link"));
        assert.ok(link, "k1's link command is planned");
        assert.match(link.newState.inputs.stdin, /^ip link add 'ftok2' type ipip remote '198\.51\.100\.162' local '198\.51\.100\.161' ttl '255' dev 'eth0' encap fou encap-sport auto encap-dport '5555'$/m);
        assert.ok(!r.stdout.includes("PRIVATE KEY"), "no private key in the preview");

        // Its own config is checked before anything is declared.
        await example.setConfig({ hosts: hosts.slice(0, 1) });
        const bad = await example.pulumi(["preview"]);
        assert.notEqual(bad.code, 0);
        assert.match(bad.stdout + bad.stderr, /fou-existing-hosts:hosts must list exactly two hosts/);
        assert.doesNotMatch(bad.stdout, /\+\s+command:/);
    } finally {
        await example.remove();
        rmSync(dir, { recursive: true, force: true });
    }
});

test("scripts/pulumi keeps a file backend's state as zstd, takes over a plain-JSON stack, and PULUMI_DIY_BACKEND_ZSTD=false goes back", async () => {
    const s = new TestStack("zstd");
    const file = (ext: string) => path.join(s.dir, ".pulumi", "stacks", "fou-tunnel", `zstd.json${ext}`);
    const exists = (ext: string) => readdirSync(path.dirname(file(""))).includes(`zstd.json${ext}`);
    try {
        // A stack made by plain JSON writes (an older checkout, or pulumi without this script).
        const plain = { PULUMI_DIY_BACKEND_ZSTD: "false" };
        assert.equal((await s.pulumi(["stack", "init", "--secrets-provider", "passphrase"], undefined, plain)).code, 0);
        assert.ok(exists("") && !exists(".zst"), "the older write is plain JSON");
        const exported = JSON.parse((await s.ok(["stack", "export"])).stdout);
        const urn = "urn:pulumi:zstd::fou-tunnel::pulumi:pulumi:Stack::fou-tunnel-zstd";
        exported.deployment.resources = [{ urn, custom: false, type: "pulumi:pulumi:Stack", outputs: { marker: "kept" } }];
        const deployment = path.join(s.dir, "deployment.json");
        writeFileSync(deployment, JSON.stringify(exported));

        // The next write through scripts/pulumi is zstd, and the plain file is gone from stacks/.
        await s.ok(["stack", "import", "--file", deployment]);
        assert.ok(exists(".zst") && !exists(""), "written as zstd");
        assert.deepEqual([...readFileSync(file(".zst")).subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], "zstd's magic number");
        const back = JSON.parse((await s.ok(["stack", "export"])).stdout);
        assert.equal(back.deployment.resources[0].outputs.marker, "kept", "the state reads back");

        // Opting out rewrites it as plain JSON.
        const r = await s.pulumi(["stack", "import", "--file", deployment], undefined, plain);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(exists("") && !exists(".zst"), "back to plain JSON");
        assert.equal(JSON.parse(readFileSync(file(""), "utf8")).checkpoint.latest.resources[0].outputs.marker, "kept");

        // The caller's choice under pulumi's other names is kept too: the older name of the
        // opt-out (not overridden by the default), and gzip (no "both enabled" refusal).
        await s.ok(["stack", "import", "--file", deployment]);
        assert.ok(exists(".zst"));
        const older = await s.pulumi(["stack", "import", "--file", deployment], undefined, { PULUMI_SELF_MANAGED_STATE_ZSTD: "false" });
        assert.equal(older.code, 0, older.stdout + older.stderr);
        assert.ok(exists("") && !exists(".zst"), "PULUMI_SELF_MANAGED_STATE_ZSTD=false: plain JSON");
        const gz = await s.pulumi(["stack", "import", "--file", deployment], undefined, { PULUMI_DIY_BACKEND_GZIP: "true" });
        assert.equal(gz.code, 0, gz.stdout + gz.stderr);
        assert.ok(exists(".gz") && !exists("") && !exists(".zst"), "PULUMI_DIY_BACKEND_GZIP=true: gzip");
    } finally {
        await s.remove();
    }
});
