/**
 * `vm/net.sh reclaim`, which scripts/test.sh runs before the VM tests: a bridge of ours whose VMs
 * are gone (a killed run's) is removed with its taps; one whose tap a process holds, one with a
 * port that is no tap, and a bridge of anyone else stay. The bridges here carry no address, so
 * nothing is routed while the test runs.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { REPO } from "./harness";

const ALIAS = "fou-tunnel test bridge";
const tag = process.pid.toString(36).slice(-4);
const names = { stale: `fourcs${tag}`, live: `fourcl${tag}`, veth: `fourcv${tag}`, other: `fourco${tag}` };
const made: string[] = [];

function ip(...args: string[]): void {
    execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}
function exists(link: string): boolean {
    return existsSync(`/sys/class/net/${link}`);
}
function bridge(name: string, alias: string | undefined, port: string, kind: "tap" | "veth"): void {
    ip("link", "add", "name", name, "type", "bridge");
    made.push(name);
    if (alias) ip("link", "set", "dev", name, "alias", alias);
    if (kind === "tap") ip("tuntap", "add", "dev", port, "mode", "tap");
    else ip("link", "add", port, "type", "veth", "peer", "name", `${port}p`);
    made.push(port);
    ip("link", "set", "dev", port, "master", name);
}
function reclaim(): { stdout: string; stderr: string } {
    const r = spawnSync(path.join(REPO, "vm", "net.sh"), ["reclaim"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return { stdout: r.stdout, stderr: r.stderr };
}

after(() => {
    for (const l of made.reverse()) if (exists(l)) ip("link", "del", "dev", l);
});

test("reclaim removes a bridge of ours whose taps nobody holds, and keeps the rest", async () => {
    bridge(names.stale, ALIAS, `${names.stale}t`, "tap");
    bridge(names.live, ALIAS, `${names.live}t`, "tap");
    bridge(names.veth, ALIAS, `${names.veth}v`, "veth");
    bridge(names.other, undefined, `${names.other}t`, "tap");
    // A process holding the live bridge's tap, as qemu does (TUNSETIFF, IFF_TAP | IFF_NO_PI).
    const holder = spawn("python3", ["-c", [
        "import fcntl, os, struct, sys, time",
        "fd = os.open('/dev/net/tun', os.O_RDWR)",
        `fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'${names.live}t', 0x0002 | 0x1000))`,
        "print('held', flush=True)",
        "time.sleep(60)",
    ].join("\n")], { stdio: ["ignore", "pipe", "inherit"] });
    try {
        await new Promise<void>((resolve, reject) => {
            holder.stdout!.once("data", () => resolve());
            holder.once("exit", (c) => reject(new Error(`tap holder exited ${c}`)));
        });
        const r = reclaim();
        assert.match(r.stdout, new RegExp(`reclaimed ${names.stale} \\(no address\\) and its taps: ${names.stale}t`));
        assert.ok(!exists(names.stale) && !exists(`${names.stale}t`), "the stale bridge and its tap are gone");
        for (const kept of [names.live, `${names.live}t`, names.veth, names.other, `${names.other}t`]) {
            assert.ok(exists(kept), `${kept} is kept`);
        }
        assert.match(r.stderr, new RegExp(`${names.live}: a live VM \\(a tap held open\\) or a port that is no tap is attached; kept`));
    } finally {
        holder.kill("SIGKILL");
    }
    await new Promise((r) => setTimeout(r, 200));
    // Its holder gone, the once-live bridge is stale too; a second reclaim takes it.
    const again = reclaim();
    assert.match(again.stdout, new RegExp(`reclaimed ${names.live} `));
    assert.ok(!exists(names.live) && exists(names.other));
});
