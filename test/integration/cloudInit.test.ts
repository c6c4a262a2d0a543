/**
 * The aws stack's user data, for real, without AWS: two VMs of vm/build-cloud-image.sh (Debian's
 * cloud kernel, the one the AMI boots, and cloud-init) boot with a NoCloud seed holding exactly
 * the user data the aws stack renders (test/aws/render-user-data.ts, an AwsHosts run under mocks
 * with keys made here). Each comes up serving only the pinned host key, with the admin user
 * (the stack's key, sudo without a password) and no login for root; the aws poll script passes on
 * it as admin. Then the tunnel components run on both through admin with sudo (a `hosts: ssh`
 * stack, its tunnel with a routed prefix), each step as `sudo -n /bin/sh -s create`, the route is
 * there and pings cross the tunnel both ways, destroy leaves both hosts as before, and the cloud kernel
 * loads fou, ipip, sit, ip_gre and nf_tables.
 *
 * Boots VMs on 198.51.100.0/24: run under `flock /tmp/fou-vm.lock`.
 */
import assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { shq } from "../../components/shell";
import { pollScript } from "../../hosts/aws";
import { REPO, routed, TestStack } from "./harness";

const BRIDGE = "fci-br";
const GATEWAY = "198.51.100.1/24";
const HOSTS = [
    { name: "c1", address: "198.51.100.181", tap: "fci-c1", mac: "52:54:00:00:01:81" },
    { name: "c2", address: "198.51.100.182", tap: "fci-c2", mac: "52:54:00:00:01:82" },
];
/** What c1 routes into the tunnel. */
const ROUTED = "198.51.100.224/28";
const dir = mkdtempSync(path.join(tmpdir(), "fou-cloud-init-"));
const file = (name: string) => path.join(dir, name);
const timings: Record<string, number> = {};
let image = "";
let userData: Record<string, string> = {};
/** What vm.sh reported per VM (its hostKey is the throwaway key it put into the image). */
const vms: Record<string, { hostKey: string; bootSeconds: number; kernelRelease: string }> = {};
let agent: ChildProcess | undefined;
let stack: TestStack | undefined;
let netUp = false;

function keygen(name: string): { privateKey: string; publicKey: string } {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file(name)]);
    return { privateKey: readFileSync(file(name), "utf8"), publicKey: readFileSync(file(`${name}.pub`), "utf8").trim() };
}

/** ssh as USER to HOST with the stack's key, the host key checked against KNOWN (a known_hosts file). */
function sshAs(user: string, host: string, command: string, known = file("known_hosts")) {
    return spawnSync(
        "ssh",
        [
            "-i", file("stack"),
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", `UserKnownHostsFile=${known}`,
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=10",
            `${user}@${host}`,
            command,
        ],
        { encoding: "utf8", timeout: 120_000 },
    );
}

/** As admin; throws with the output unless the command exits 0. */
function admin(host: string, command: string): string {
    const r = sshAs("admin", host, command);
    assert.equal(r.status, 0, `admin@${host}: ${command}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
}

/** What the tunnel components touch on a host (as root through sudo), stable between runs. */
function hostState(host: string): string {
    const body = [
        "echo fou:; ip fou show 2>/dev/null",
        "echo links:; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort",
        "echo addrs:; ip -o addr show | awk '$4 !~ /^fe80:/ {print $2, $4}' | sort",
        "echo routes:; ip -4 route show | sort",
        "echo forward:; cat /proc/sys/net/ipv4/ip_forward",
        "echo nft:; nft list ruleset",
        "echo sysctl.conf:; grep -c fou-tunnel /etc/sysctl.conf || true",
        "echo modules:; lsmod | awk '$1==\"fou\" || $1==\"ipip\" || $1==\"sit\" || $1==\"ip_gre\" {print $1}' | sort",
        "echo files:; ls /var/lib/fou-tunnel /etc/fou-tunnel 2>/dev/null || true",
        "echo units:; ls /etc/systemd/system /etc/systemd/system/multi-user.target.wants | grep fou-tunnel || true",
    ].join("; ");
    return admin(host, `sudo -n sh -c ${shq(body)}`);
}

function run(cmd: string, args: string[], timeoutMs = 600_000): string {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
}

after(async () => {
    if (stack) {
        await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
        await stack.remove();
    }
    for (const h of HOSTS) {
        spawnSync(path.join(REPO, "vm/vm.sh"), ["stop", "--state-dir", file(`vm-${h.name}`), "--tap", h.tap], { stdio: "inherit" });
    }
    if (netUp) {
        spawnSync(path.join(REPO, "vm/net.sh"), ["down", "--bridge", BRIDGE], { stdio: "inherit" });
    }
    if (agent?.pid) {
        process.kill(agent.pid);
    }
    rmSync(dir, { recursive: true, force: true });
    console.log(`timings (s): ${JSON.stringify(timings)}`);
});

before(() => {
    assert.ok(!routed("198.51.100.0/24"), "198.51.100.0/24 is already routed here (a dev stack or another test's bridge); the test would disturb it");
    let t = Date.now();
    image = run(path.join(REPO, "vm/build-cloud-image.sh"), [], 1_200_000).trim().split("\n").pop() as string;
    timings.image = (Date.now() - t) / 1000;

    // The stack's SSH key and each host's host key (in the aws stack: tls keys made by Pulumi).
    const stackKey = keygen("stack");
    const hostKeys = Object.fromEntries(HOSTS.map((h) => [h.name, keygen(`host-${h.name}`)]));
    // vm.sh gives root an authorized key; this one's private half is thrown away at once.
    keygen("throwaway");
    rmSync(file("throwaway"));
    writeFileSync(file("render.json"), JSON.stringify({ authorizedKey: stackKey.publicKey, hosts: hostKeys }));
    t = Date.now();
    userData = JSON.parse(
        run("node", ["--require", "ts-node/register", path.join(REPO, "test/aws/render-user-data.ts"), file("render.json")]),
    ) as Record<string, string>;
    timings.render = (Date.now() - t) / 1000;
    writeFileSync(file("known_hosts"), HOSTS.map((h) => `${h.address} ${hostKeys[h.name].publicKey}\n`).join(""));
    for (const h of HOSTS) {
        execFileSync("mkdir", ["-p", file(`seed-${h.name}`)]);
        writeFileSync(file(`seed-${h.name}/user-data`), userData[h.name]);
        writeFileSync(file(`seed-${h.name}/meta-data`), `instance-id: i-fou-cloud-${h.name}\nlocal-hostname: ${h.name}\n`);
    }
});

test("the user data is the aws stack's: cloud-config with each host's own key and the admin user", () => {
    for (const h of HOSTS) {
        const text = userData[h.name];
        assert.match(text, /^#cloud-config\nssh_deletekeys: true\n/);
        assert.ok(text.includes(`ed25519_public: ${readFileSync(file(`host-${h.name}.pub`), "utf8").trim().split(" ").slice(0, 2).join(" ")}\n`), h.name);
        assert.match(text, /\n {2}- name: admin\n/);
    }
});

test("two cloud-init VMs boot with the seed and answer SSH", async () => {
    const r = spawnSync(path.join(REPO, "vm/net.sh"), ["up", "--bridge", BRIDGE, "--address", GATEWAY], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    netUp = true;
    const t = Date.now();
    const starts = HOSTS.map(
        (h) =>
            new Promise<string>((resolve, reject) => {
                const p = spawn(
                    path.join(REPO, "vm/vm.sh"),
                    [
                        "start", "--name", h.name, "--address", `${h.address}/24`, "--bridge", BRIDGE, "--tap", h.tap, "--mac", h.mac,
                        "--state-dir", file(`vm-${h.name}`), "--authorized-key", readFileSync(file("throwaway.pub"), "utf8").trim(),
                        "--memory", "1024", "--no-persist", "--image", image, "--cloud-seed", file(`seed-${h.name}`), "--timeout", "400",
                    ],
                    { stdio: ["ignore", "pipe", "pipe"] },
                );
                let out = "";
                let err = "";
                p.stdout.on("data", (d) => (out += d));
                p.stderr.on("data", (d) => (err += d));
                p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`vm.sh start ${h.name} failed (${code}):\n${err}`))));
            }),
    );
    const outs = await Promise.all(starts);
    timings.vmsStarted = (Date.now() - t) / 1000;
    HOSTS.forEach((h, i) => (vms[h.name] = JSON.parse(outs[i].trim().split("\n").pop() as string)));
    // sshd may answer before cloud-init has made admin: wait for the login (bounded).
    for (const h of HOSTS) {
        const deadline = Date.now() + 300_000;
        let last = sshAs("admin", h.address, "true");
        while (last.status !== 0 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 3000));
            last = sshAs("admin", h.address, "true");
        }
        assert.equal(last.status, 0, `${h.name}: admin login: ${last.stderr}`);
    }
    timings.adminLogin = (Date.now() - t) / 1000;
    for (const h of HOSTS) {
        assert.match(vms[h.name].kernelRelease, /-cloud-amd64$/);
    }
});

test("each VM serves only the pinned host key: StrictHostKeyChecking passes with it, fails with the key the image had", () => {
    for (const h of HOSTS) {
        assert.equal(admin(h.address, "id -un").trim(), "admin");
        const scanned = run("ssh-keyscan", ["-T", "10", "-t", "rsa,ecdsa,ed25519", h.address])
            .split("\n")
            .filter((l) => l && !l.startsWith("#"));
        const pinned = readFileSync(file(`host-${h.name}.pub`), "utf8").trim().split(" ").slice(0, 2).join(" ");
        assert.deepEqual(scanned, [`${h.address} ${pinned}`], `${h.name}: one key, the pinned one`);
        // The key vm.sh put into the image (as EC2 would have generated one) is gone.
        writeFileSync(file(`old-${h.name}`), `${h.address} ${vms[h.name].hostKey}\n`);
        const r = sshAs("admin", h.address, "true", file(`old-${h.name}`));
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/, h.name);
        assert.equal(admin(h.address, "ls /etc/ssh/ | grep '^ssh_host_' | sort").trim(), "ssh_host_ed25519_key\nssh_host_ed25519_key.pub");
    }
});

test("admin has sudo without a password; root cannot log in; cloud-init finished the user data cleanly", () => {
    for (const h of HOSTS) {
        assert.equal(admin(h.address, "sudo -n true && sudo -n id -un").trim(), "root");
        const root = sshAs("root", h.address, "true");
        assert.equal(root.status, 255, `${h.name}: root login must be refused: ${root.stdout} ${root.stderr}`);
        assert.match(root.stderr, /Permission denied \(publickey/);
        assert.match(admin(h.address, "cloud-init status --long"), /^status: done$[^]*DataSourceNoCloud \[seed=\/var\/lib\/cloud\/seed\/nocloud\]/m);
        assert.match(admin(h.address, "sudo -n cloud-init schema --system 2>&1"), /Valid cloud-config/);
        assert.match(admin(h.address, "sudo -n cat /etc/sudoers.d/90-cloud-init-users"), /^admin ALL=\(ALL\) NOPASSWD:ALL$/m);
        assert.match(admin(h.address, "dpkg-query -W -f '${Status}' nftables"), /install ok installed/);
        // The aws stack's poll, as it runs on an instance: as admin, after cloud-init.
        assert.equal(admin(h.address, pollScript(h.address)), "device=eth0\n");
    }
});

const before_: Record<string, string> = {};

test("the tunnel components run on both VMs through admin with sudo: up, a ping across the tunnel, destroy leaves the hosts as they were", async () => {
    for (const h of HOSTS) {
        before_[h.name] = hostState(h.address);
    }
    // The stack's key reaches the stack through an agent of this test's.
    const sock = file("agent.sock");
    agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    for (let i = 0; i < 50 && !existsSync(sock); i++) {
        await new Promise((r) => setTimeout(r, 100));
    }
    execFileSync("ssh-add", ["-q", file("stack")], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
    const pinned = (n: string) => readFileSync(file(`host-${n}.pub`), "utf8").trim().split(" ").slice(0, 2).join(" ");
    writeFileSync(
        file("topology.yaml"),
        [
            "hosts:",
            ...HOSTS.flatMap((h) => [`  - name: ${h.name}`, "    ssh:", `      address: ${h.address}`, "      user: admin", `      hostKey: ${pinned(h.name)}`]),
            "tunnels:",
            "  - hosts: [c1, c2]",
            "    port: 5555",
            "    gwips: [10.10.10.1, 10.10.10.2]",
            // A routed prefix (TEST-NET-2 addresses nobody uses, clear of the SSH path): the
            // ip_forward and loose rp_filter checks run too, under admin's sudo and dash.
            "    routes:",
            `      c1: [${ROUTED}]`,
            "",
        ].join("\n"),
    );
    stack = new TestStack("cloudinit");
    await stack.init({ hosts: "ssh", topology: file("topology.yaml"), sshAgentSocket: sock });
    const up = await stack.ok(["up", "--yes", "--skip-preview"]);
    timings.up = up.seconds;
    const out = await stack.outputs();
    assert.deepEqual(out.gwips, { "c1-c2": { c1: "10.10.10.1", c2: "10.10.10.2" } });
    assert.equal(out.verification.length, 2);
    for (const v of out.verification) {
        assert.equal(v.received, 3, JSON.stringify(v));
        assert.ok(v.udpToPeer >= 3 && v.udpFromPeer >= 3, JSON.stringify(v));
    }
    // Our own ping (ping needs root here: the initramfs root keeps no file capabilities).
    const ping = admin(HOSTS[0].address, "sudo -n ping -n -c 3 -W 2 -I 10.10.10.1 10.10.10.2");
    assert.match(ping, /3 packets transmitted, 3 received/);
    const c1 = hostState(HOSTS[0].address);
    assert.match(c1, /^port 5555 ipproto 4$/m);
    assert.match(c1, /^10\.10\.10\.2 via 10\.10\.10\.1 dev /m);
    // The routed prefix goes into the tunnel on c1 (only there), with forwarding on and the
    // link's reverse-path filter loose.
    assert.match(c1, /^198\.51\.100\.224\/28 via 10\.10\.10\.1 dev (\S+) /m);
    const ifname = /^198\.51\.100\.224\/28 via 10\.10\.10\.1 dev (\S+) /m.exec(c1)![1];
    assert.match(c1, /^forward:\n1$/m);
    assert.equal(admin(HOSTS[0].address, `cat /proc/sys/net/ipv4/conf/${ifname}/rp_filter`).trim(), "2");
    assert.doesNotMatch(hostState(HOSTS[1].address), /198\.51\.100\.224\/28/);
    // And the other way: from c2 to c1, whose answers go back into the tunnel.
    assert.match(admin(HOSTS[1].address, "sudo -n ping -n -c 3 -W 2 -I 10.10.10.2 10.10.10.1"), /3 packets transmitted, 3 received/);
    assert.match(c1, /udp dport 5555 ip saddr 198\.51\.100\.182 accept/);
    // Every step went through sudo as admin: the journal shows admin's sudo sessions.
    assert.match(admin(HOSTS[0].address, "sudo -n journalctl -q --no-pager -t sudo | grep -c 'admin : .*COMMAND=/bin/sh -s create$' || true"), /^[1-9]\d*$/m);

    const down = await stack.ok(["destroy", "--yes", "--skip-preview"]);
    timings.destroy = down.seconds;
    for (const h of HOSTS) {
        assert.equal(hostState(h.address), before_[h.name], `${h.name} is not as before the stack`);
    }
});

test("Debian's cloud kernel loads fou, ipip, sit, ip_gre and nf_tables", () => {
    for (const h of HOSTS) {
        const lsmod = admin(h.address, "sudo -n modprobe -a fou ipip sit ip_gre nf_tables && lsmod | awk '{print $1}' | sort");
        for (const m of ["fou", "ip_gre", "ipip", "nf_tables", "sit"]) {
            assert.match(lsmod, new RegExp(`^${m}$`, "m"), `${h.name}: ${m}`);
        }
        assert.match(admin(h.address, "uname -r"), /-cloud-amd64$/m);
    }
});
