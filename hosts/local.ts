import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import * as path from "path";
import { TunnelHost } from "../components/host";
import { sh } from "../components/shell";
import { LocalSettings } from "./localConfig";

export interface LocalVmsArgs {
    readonly settings: LocalSettings;
    /** Distinguishes this stack's bridge, taps and run directory from other stacks'. */
    readonly stackId: string;
}

/** Names on this machine derived from the stack, short enough for IFNAMSIZ. */
export function localNames(stackId: string, vmIndex: number) {
    const tag = createHash("sha256").update(stackId).digest("hex").slice(0, 6);
    return {
        bridge: `foubr-${tag}`,
        tap: `fou${vmIndex}-${tag}`,
        mac: `52:54:00:${tag.slice(0, 2)}:${tag.slice(2, 4)}:${(vmIndex + 1).toString(16).padStart(2, "0")}`,
        runDir: `/run/fou-tunnel/${tag}`,
    };
}

/** The repository root, where vm/ holds the image and VM scripts. */
const REPO = path.resolve(__dirname, "..");

/**
 * Two (or more) qemu VMs on this machine that boot Debian's kernel, which has fou and ipip, on a
 * bridge with TEST-NET addresses, reachable over SSH with a key made for this stack. Create
 * builds (or reuses) the cached image and starts the VMs; delete stops them by PID and removes
 * their taps, the bridge and their files.
 */
export class LocalVms extends pulumi.ComponentResource {
    public readonly hosts: TunnelHost[];
    /** The stack's SSH private key (secret). */
    public readonly privateKey: pulumi.Output<string>;
    public readonly publicKey: pulumi.Output<string>;
    /** Per-VM boot report from vm.sh (pid, boot time, accelerator, kernel). */
    public readonly vms: pulumi.Output<Omit<VmReport, "hostKey">[]>;

    constructor(name: string, args: LocalVmsArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("fou:local:LocalVms", name, {}, opts);
        const { settings } = args;
        const names0 = localNames(args.stackId, 0);

        const key = new command.local.Command(
            `${name}-ssh-key`,
            {
                create: [
                    "set -eu; umask 077; d=$(mktemp -d)",
                    "ssh-keygen -q -t ed25519 -N '' -C fou-tunnel -f \"$d/id\"",
                    'cat "$d/id" "$d/id.pub"; rm -rf "$d"',
                ].join("\n"),
                logging: "none",
            },
            { parent: this, additionalSecretOutputs: ["stdout"] },
        );
        const keyText = key.stdout;
        this.privateKey = pulumi.secret(keyText.apply((t) => splitKeyPair(t).privateKey));
        // The public half is no secret; leaving it secret would hide every VM command and report.
        this.publicKey = pulumi.unsecret(keyText.apply((t) => splitKeyPair(t).publicKey));

        const network = new command.local.Command(
            `${name}-network`,
            {
                create: sh`./vm/net.sh up --bridge ${names0.bridge} --address ${settings.gateway}`,
                delete: sh`./vm/net.sh down --bridge ${names0.bridge}` + `; rmdir ${sh`${names0.runDir}`} /run/fou-tunnel 2>/dev/null || true`,
                dir: REPO,
            },
            { parent: this, deleteBeforeReplace: true },
        );

        const vmCommands = settings.vms.map((vm, i) => {
            const n = localNames(args.stackId, i);
            const stateDir = `${n.runDir}/${vm.name}`;
            const prefixLength = settings.gateway.split("/")[1];
            const start = this.publicKey.apply(
                (pub) =>
                    sh`./vm/vm.sh start --name ${vm.name} --address ${`${vm.address}/${prefixLength}`} --bridge ${n.bridge} --tap ${n.tap} --mac ${n.mac} --state-dir ${stateDir} --memory ${settings.memoryMb} --authorized-key ${pub}` +
                    (vm.fou ? "" : " --no-fou"),
            );
            return new command.local.Command(
                `${name}-${vm.name}`,
                {
                    create: start,
                    delete: sh`./vm/vm.sh stop --state-dir ${stateDir}`,
                    dir: REPO,
                    triggers: [vm.name, vm.address, settings.gateway, settings.memoryMb, vm.fou, n.tap, this.publicKey],
                },
                { parent: this, dependsOn: [network], deleteBeforeReplace: true, customTimeouts: { create: "15m" } },
            );
        });

        const reports = vmCommands.map((c) => c.stdout.apply(parseVmReport));
        this.hosts = settings.vms.map((vm, i) => ({
            name: vm.name,
            underlayAddress: vm.address,
            device: "eth0",
            connection: {
                host: vm.address,
                user: "root",
                privateKey: this.privateKey,
                // Each VM gets a fresh host key at boot; pinning it means SSH talks to that VM only.
                hostKey: reports[i].apply((r) => r.hostKey),
                dialErrorLimit: 30,
                perDialTimeout: 10,
            },
            readyAfter: [vmCommands[i]],
            identity: reports[i].apply((r) => r.hostKey),
        }));
        // The report without the host key (it is in each connection): name, pid, boot time, accel.
        this.vms = pulumi.all(reports).apply((rs) => rs.map(({ hostKey: _, ...rest }) => rest));
        this.registerOutputs({ publicKey: this.publicKey, vms: this.vms });
    }
}

/** What `vm.sh start` prints: one JSON line about the running VM. */
export interface VmReport {
    readonly name: string;
    readonly pid: number;
    readonly bootSeconds: number;
    readonly accel: string;
    readonly kernelRelease: string;
    /** The VM's SSH host key, `ssh-ed25519 AAAA…`. */
    readonly hostKey: string;
}

export function parseVmReport(stdout: string): VmReport {
    const line = stdout.trim().split("\n").pop() ?? "";
    try {
        return JSON.parse(line) as VmReport;
    } catch {
        throw new Error(`vm.sh start printed no report: ${JSON.stringify(line)}`);
    }
}

const KEY_END = "-----END OPENSSH PRIVATE KEY-----";

/** Splits what the key command prints (the private key file, then the public key line). */
export function splitKeyPair(text: string): { privateKey: string; publicKey: string } {
    const end = text.indexOf(KEY_END);
    if (end < 0) {
        throw new Error("the SSH key command printed no private key");
    }
    const cut = end + KEY_END.length;
    return { privateKey: text.slice(0, cut) + "\n", publicKey: text.slice(cut).trim() };
}
