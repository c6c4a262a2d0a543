/**
 * Helpers for tests that run the real toolchain: `scripts/pulumi` against a throwaway file
 * backend and stack config file, and SSH into the VMs a stack made.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import YAML from "yaml";

export const REPO = path.resolve(__dirname, "..", "..");
const run = promisify(execFile);

export interface PulumiResult {
    readonly stdout: string;
    readonly stderr: string;
    readonly code: number;
    readonly seconds: number;
}

/** A stack in its own backend directory, with its config in a file outside the repo. */
export class TestStack {
    readonly dir = mkdtempSync(path.join(tmpdir(), "fou-test-"));
    readonly configFile = path.join(this.dir, "stack.yaml");
    private readonly env: NodeJS.ProcessEnv;

    constructor(readonly name: string) {
        this.env = {
            ...process.env,
            PULUMI_BACKEND_URL: `file://${this.dir}`,
            PULUMI_CONFIG_PASSPHRASE: randomBytes(12).toString("hex"),
        };
        writeFileSync(this.configFile, "config: {}\n");
    }

    /** Runs `scripts/pulumi ARGS --stack NAME` (with EXTRA in its environment); never throws, the caller asserts on the result. */
    async pulumi(args: string[], timeoutMs = 20 * 60_000, extra: NodeJS.ProcessEnv = {}): Promise<PulumiResult> {
        const started = Date.now();
        const all = [...args];
        if (!["plugin", "version"].includes(args[0])) {
            all.push("--stack", this.name, "--non-interactive");
        }
        if (!["stack", "plugin", "version"].includes(args[0])) {
            all.push("--config-file", this.configFile);
        }
        try {
            const r = await run(path.join(REPO, "scripts", "pulumi"), all, {
                cwd: REPO,
                env: { ...this.env, ...extra },
                timeout: timeoutMs,
                maxBuffer: 64 * 1024 * 1024,
            });
            return { stdout: r.stdout, stderr: r.stderr, code: 0, seconds: (Date.now() - started) / 1000 };
        } catch (e: any) {
            return { stdout: e.stdout ?? "", stderr: e.stderr ?? String(e), code: e.code ?? 1, seconds: (Date.now() - started) / 1000 };
        }
    }

    /** Like pulumi(), but throws with the output when the command fails. */
    async ok(args: string[]): Promise<PulumiResult> {
        const r = await this.pulumi(args);
        if (r.code !== 0) {
            throw new Error(`pulumi ${args.join(" ")} failed (${r.code}):\n${explain(r)}`);
        }
        return r;
    }

    async init(config: Record<string, unknown>): Promise<void> {
        await this.ok(["stack", "init", "--secrets-provider", "passphrase"]);
        await this.setConfig(config);
    }

    /** Sets `fou-tunnel:` keys, as `pulumi config set` would, by rewriting the stack's config file. */
    async setConfig(config: Record<string, unknown>): Promise<void> {
        const doc = (YAML.parse(readFileSync(this.configFile, "utf8")) ?? {}) as { config?: Record<string, unknown> };
        doc.config = { ...(doc.config ?? {}) };
        for (const [k, v] of Object.entries(config)) {
            if (v === undefined) {
                delete doc.config[`fou-tunnel:${k}`]; // `pulumi config rm`
            } else {
                doc.config[`fou-tunnel:${k}`] = v;
            }
        }
        writeFileSync(this.configFile, YAML.stringify(doc));
    }

    /** `pulumi config set --secret fou-tunnel:KEY` with the value on stdin, as a user sets a key file. */
    setSecret(key: string, value: string): void {
        execFileSync(path.join(REPO, "scripts", "pulumi"), ["config", "set", "--secret", `fou-tunnel:${key}`, "--stack", this.name, "--non-interactive", "--config-file", this.configFile], {
            cwd: REPO,
            env: this.env,
            input: value,
            stdio: ["pipe", "ignore", "pipe"],
        });
    }

    async outputs(): Promise<Record<string, any>> {
        const r = await this.ok(["stack", "output", "--json", "--show-secrets"]);
        return JSON.parse(r.stdout);
    }

    /** Removes the stack and its backend directory (after a destroy). */
    async remove(): Promise<void> {
        await this.pulumi(["stack", "rm", "--yes", "--force"]);
        rmSync(this.dir, { recursive: true, force: true });
    }
}

/**
 * A run's output for an assertion message, what matters first: the steps that changed something
 * (with their `[diff: …]`), every error line and the diagnostics, then the whole output. A CI log
 * keeps only the head and tail of a long message; the middle of a refresh is hundreds of
 * "refreshing" lines.
 */
export function explain(r: PulumiResult): string {
    const text = `${r.stdout}\n${r.stderr}`;
    const lines = text.split("\n");
    const changes = lines.filter((l) =>
        /^\s*(\+-|-\+|\+\+|--|[+~-])\s+\S+:\S+ /.test(l) &&
        !/ (refreshing|refresh|creating|updating|deleting|replacing|reading)( \(|$)/.test(l));
    const start = lines.findIndex((l) => /^Diagnostics:/.test(l));
    const end = lines.findIndex((l, i) => i > start && /^(Outputs|Resources):/.test(l));
    const diagnostics = start < 0 ? [] : lines.slice(start, end < 0 ? undefined : end);
    const errors = lines.filter((l) => /error:|Error:|failed/.test(l) && !diagnostics.includes(l));
    const head = [...changes, ...errors, ...diagnostics].join("\n");
    return `(code ${r.code}; what changed, errors, diagnostics:)\n${head.slice(0, 6000)}\n(the whole output:)\n${text}`;
}

/** Runs a command on a VM as root with the stack's key; returns stdout, throws on failure. */
export function ssh(privateKey: string, host: string, command: string, timeoutMs = 60_000): string {
    const dir = mkdtempSync(path.join(tmpdir(), "fou-ssh-"));
    try {
        const key = path.join(dir, "id");
        writeFileSync(key, privateKey, { mode: 0o600 });
        return execFileSync(
            "ssh",
            [
                "-i", key,
                "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10",
                `root@${host}`,
                command,
            ],
            { encoding: "utf8", timeout: timeoutMs },
        );
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

/** Whether an IPv4 prefix is already routed on this machine (so a test must not take it). */
export function routed(prefix: string): boolean {
    return execFileSync("ip", ["-4", "route", "show", "match", prefix.split("/")[0]], { encoding: "utf8" })
        .split("\n")
        .some((l) => l.trim() !== "" && !l.startsWith("default"));
}

/**
 * Reboots a VM (`systemctl reboot`) and waits up to SECONDS for it to answer SSH on a new boot;
 * returns the seconds it took. Fails when it does not come back, or comes back on the same boot.
 */
export async function rebootVm(privateKey: string, host: string, seconds = 240): Promise<number> {
    const bootId = () => ssh(privateKey, host, "cat /proc/sys/kernel/random/boot_id", 15_000);
    const before = bootId();
    const started = Date.now();
    try {
        ssh(privateKey, host, "systemctl reboot", 15_000);
    } catch {
        // the connection may drop as the VM goes down
    }
    await new Promise((r) => setTimeout(r, 5000));
    while (Date.now() - started < seconds * 1000) {
        try {
            if (bootId() !== before) return (Date.now() - started) / 1000;
        } catch {
            // not up yet
        }
        await new Promise((r) => setTimeout(r, 2000));
    }
    throw new Error(`${host} did not come back on a new boot within ${seconds} s`);
}

/** What tunnels touch on a host, in a stable order: compare before and after to prove a clean host. */
export function hostState(privateKey: string, host: string): string {
    return ssh(
        privateKey,
        host,
        [
            "echo fou:; ip fou show 2>/dev/null",
            "echo links:; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort",
            "echo addrs:; ip -o addr show | awk '$4 !~ /^fe80:/ {print $2, $4}' | sort",
            "echo routes:; ip -4 route show | sort",
            "echo routes6:; ip -6 route show | grep -v '^fe80::/64' | grep -v '^multicast' | sort",
            "echo forward:; cat /proc/sys/net/ipv4/ip_forward",
            "echo nft:; nft list ruleset 2>/dev/null || true",
            "echo sysctl.conf:; grep -c 'fou-tunnel' /etc/sysctl.conf || true",
            "echo modules:; lsmod | awk '$1==\"fou\" || $1==\"ipip\" || $1==\"sit\" || $1==\"ip_gre\" {print $1}' | sort",
            "echo files:; ls /var/lib/fou-tunnel /etc/fou-tunnel 2>/dev/null || true",
            "echo units:; ls /etc/systemd/system /etc/systemd/system/multi-user.target.wants | grep fou-tunnel || true",
        ].join("; "),
    );
}

/**
 * Pings from one end (IPv4 or IPv6 GWIPs) while capturing UDP on the other end's underlay,
 * independently of the stack's own check. `verbose` has tcpdump check UDP checksums ("udp sum ok").
 */
export function pingAndCapture(privateKey: string, from: string, fromGwip: string, to: string, toGwip: string, port: number, verbose = false) {
    ssh(
        privateKey,
        to,
        `rm -f /tmp/cap; (timeout 20 tcpdump -nn ${verbose ? "-vv " : ""}-l -i eth0 -c 6 udp port ${port} and host ${from} >/tmp/cap 2>/tmp/cap.err &) ; for i in $(seq 50); do grep -q listening /tmp/cap.err && break; sleep 0.1; done`,
    );
    const ping = ssh(privateKey, from, `ping -n -c 3 -W 2 -I ${fromGwip} ${toGwip}`);
    const cap = ssh(privateKey, to, "sleep 1; cat /tmp/cap");
    return { ping, cap };
}

/**
 * Everything a stack could leave on a host, byte for byte, in a stable order: links (with their
 * details), addresses, routes of every table (both families), FOU ports, the nft ruleset, the
 * net.* sysctls, loaded modules, and every file, directory and link under /etc and
 * /var/lib/fou-tunnel (type, mode, owner, target, SHA-256 of the content). Counters and other
 * values that move by themselves are left out (VOLATILE_SYSCTLS; link statistics are not asked
 * for). Compare a host's snapshot before a stack with the one after its destroy.
 */
export function hostSnapshot(privateKey: string, host: string): string {
    return ssh(
        privateKey,
        host,
        [
            "echo '## links'; ip -d -o link show | sed 's/^[0-9]*: //' | sort",
            "echo '## addrs'; ip -o addr show | sed 's/^[0-9]*: //' | sort",
            "echo '## routes'; ip -4 route show table all | sort; ip -6 route show table all | sort",
            "echo '## rules'; ip -4 rule show; ip -6 rule show",
            "echo '## fou'; ip fou show 2>&1 | sort",
            // (`nft list` would load nf_tables itself: a snapshot must not change what it records.)
            "echo '## nft'; if [ -d /sys/module/nf_tables ]; then nft list ruleset 2>&1; else echo 'nf_tables not loaded'; fi",
            `echo '## sysctl'; sysctl -a 2>/dev/null | grep '^net\\.' | grep -Ev '${VOLATILE_SYSCTLS}' | sort`,
            "echo '## modules'; cut -d' ' -f1 /proc/modules | sort",
            "echo '## files'; find /etc /var/lib/fou-tunnel -xdev -printf '%y %m %u:%g %p -> %l\\n' 2>/dev/null | sort",
            "echo '## contents'; find /etc /var/lib/fou-tunnel -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum",
        ].join("; "),
    );
}

/** net.* sysctls that change on their own (random seeds, counters), left out of {@link hostSnapshot}. */
export const VOLATILE_SYSCTLS = ["^net\\.netfilter\\.nf_conntrack_count ", "^net\\.ipv4\\.tcp_fastopen_key ", "_random_seed ", "\\.stable_secret "].join("|");

/** The lines of two snapshots that differ, `-` before and `+` after, for assertion messages. */
export function snapshotDiff(before: string, after: string): string {
    const a = before.split("\n");
    const b = after.split("\n");
    return [...a.filter((l) => !b.includes(l)).map((l) => `- ${l}`), ...b.filter((l) => !a.includes(l)).map((l) => `+ ${l}`)].join("\n");
}
