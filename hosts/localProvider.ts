/**
 * The dynamic providers behind the local stack's bridge (`networkProvider`) and VMs
 * (`vmProvider`). Unlike a `command.local.Command`, whose refresh returns what it stored, their
 * `read` looks at this machine: a VM whose qemu died, or a bridge gone with a reboot, is reported
 * gone, so `pulumi up --refresh` creates it again.
 *
 * Their state holds the provider's text (`__provider`, see lib/providerModule.ts), and `refresh`
 * and `destroy` run that stored copy (the engine reads with the stored outputs). So
 * `localProviders` and its helpers are self-contained: they use Node's built-in modules only, and
 * every path they need (the repository with vm/*.sh) comes from the resource's own stored inputs.
 */
import type { ChildProcess } from "child_process";
import { providerModule } from "../lib/providerModule";
import type { NetworkInputs, VmInputs, VmOutputs, VmReport } from "./localProviderTypes";

export type { NetworkInputs, VmInputs, VmOutputs, VmReport } from "./localProviderTypes";

// The providers' types live out here: the emitted code has no types, so its stored text and
// what it names at run time are the same as with them inside it.

/** What one run of a script gave. */
type RunResult = { readonly code: number; readonly stdout: string; readonly stderr: string };
/** Runs FILE with ARGS (no shell) in CWD, feeding STDIN; never rejects for a non-zero exit. */
type Run = (file: string, args: string[], cwd: string, stdin?: string) => Promise<RunResult>;
/** The scripts under way, and whether watchEngine runs. */
type Scripts = { children: ChildProcess[]; watching: boolean };

/**
 * Both providers, over one script runner (so one engine watch covers every script they start).
 * Its `//` comments and its helpers' are not stored (see {@link providerModule}); nothing in
 * them names anything outside them but each other ({@link LOCAL_PROVIDER_HELPERS}).
 */
function localProviders() {
    const run = scriptRunner();
    return { networkProvider: makeNetworkProvider(run), vmProvider: makeVmProvider(run) };
}

/** The script runner: `run`, which also starts the engine watch the first time it is called. */
function scriptRunner(): Run {
    const { spawn } = require("child_process") as typeof import("child_process");
    const scripts: Scripts = { children: [], watching: false };
    return (file, args, cwd, stdin = "") => {
        watchEngine(scripts);
        return new Promise((resolve, reject) => {
            const child = spawn(file, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
            scripts.children.push(child);
            const done = () => {
                const i = scripts.children.indexOf(child);
                if (i >= 0) scripts.children.splice(i, 1);
            };
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("error", (e) => {
                done();
                reject(e);
            });
            child.on("close", (code, signal) => {
                done();
                resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
            });
            // a script that exits without reading stdin
            child.stdin.on("error", () => undefined);
            child.stdin.end(stdin);
        });
    };
}

/**
 * A `pulumi` killed with SIGKILL cannot stop its plugins, and @pulumi/pulumi's dynamic provider
 * does not notice its engine is gone: it would wait forever, and so would a VM it was booting.
 * So every few seconds this provider checks that the engine (whose address is its argument)
 * still accepts connections; once it refuses them, the scripts under way are stopped (vm.sh then
 * stops the qemu it started and deletes its tap; the next `up` starts afresh) and the provider
 * exits. Started once per runner; later calls do nothing.
 */
function watchEngine(scripts: Scripts): void {
    const m = /^([\d.]+):(\d+)$/.exec(process.argv[2] ?? "");
    if (scripts.watching || !m) {
        return;
    }
    const { connect } = require("net") as typeof import("net");
    scripts.watching = true;
    const timer = setInterval(() => {
        const probe = connect({ host: m[1], port: Number(m[2]) });
        probe.setTimeout(5000, () => probe.destroy());
        probe.on("connect", () => probe.destroy());
        probe.on("error", (e: NodeJS.ErrnoException) => {
            if (e.code !== "ECONNREFUSED") {
                return;
            }
            clearInterval(timer);
            for (const c of scripts.children) {
                c.kill("SIGTERM");
            }
            // vm.sh's cleanup takes a few seconds (it waits for its qemu to exit)
            const deadline = Date.now() + 30_000;
            const exit = setInterval(() => {
                if (scripts.children.length === 0 || Date.now() > deadline) {
                    process.exit(1);
                }
            }, 200);
            exit.unref();
        });
    }, 3000);
    timer.unref();
}

/** The last lines of a script's stderr, for an error message. */
function tail(text: string, lines = 25): string {
    return text.trim().split("\n").slice(-lines).join("\n");
}

/** A fresh id per create: whatever is built on the resource sees a replacement as a change. */
function freshId(prefix: string): string {
    const { randomBytes } = require("crypto") as typeof import("crypto");
    return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/** The keys of `news` that differ from `olds` (compared as JSON), among `keys`. */
function changedKeys(olds: Record<string, unknown>, news: Record<string, unknown>, keys: readonly string[]): string[] {
    return keys.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
}

/**
 * Whether the provider's text (`__provider`, which the SDK keeps in inputs and outputs) changed:
 * refresh and destroy run the outputs' copy, so a new text is an update, and the next `up`
 * stores the program's code.
 */
function codeChanged(olds: object, news: object): boolean {
    return (olds as { __provider?: string }).__provider !== (news as { __provider?: string }).__provider;
}

/**
 * The bridge's delete: stops any VM still in the run directory (one whose create was interrupted
 * never reached the state), removes the bridge and the run directory; every failure is reported,
 * after all of it was tried.
 */
async function deleteNetwork(run: Run, props: NetworkInputs): Promise<void> {
    const { readdirSync, rmdirSync, statSync } = require("fs") as typeof import("fs");
    const problems: string[] = [];
    let entries: string[] = [];
    try {
        entries = readdirSync(props.runDir);
    } catch {
        // no run directory (a reboot): nothing to stop
        entries = [];
    }
    for (const e of entries) {
        const dir = `${props.runDir}/${e}`;
        if (!statSync(dir).isDirectory()) {
            continue;
        }
        const r = await run(`${props.repo}/vm/vm.sh`, ["stop", "--state-dir", dir], props.repo);
        if (r.code !== 0) {
            problems.push(`vm/vm.sh stop --state-dir ${dir} failed (exit ${r.code}):\n${tail(r.stderr)}`);
        }
    }
    const down = await run(`${props.repo}/vm/net.sh`, ["down", "--bridge", props.bridge], props.repo);
    if (down.code !== 0) {
        problems.push(`vm/net.sh down --bridge ${props.bridge} failed (exit ${down.code}):\n${tail(down.stderr)}`);
    }
    for (const d of [props.runDir, props.runDir.slice(0, props.runDir.lastIndexOf("/"))]) {
        try {
            rmdirSync(d);
        } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            if (code !== "ENOENT" && code !== "ENOTEMPTY") {
                problems.push(`cannot remove ${d}: ${String(e)}`);
            }
        }
    }
    if (problems.length > 0) {
        throw new Error(`bridge ${props.bridge}: ${problems.join("\n")}`);
    }
}

/**
 * The bridge: `vm/net.sh up` (which adopts its own bridge of an interrupted run); gone when
 * `net.sh status` finds it absent, down or without its address; deleted by deleteNetwork.
 */
function makeNetworkProvider(run: Run) {
    const NETWORK_REPLACE_KEYS = ["bridge", "address", "runDir"] as const;
    return {
        async create(inputs: NetworkInputs) {
            const r = await run(`${inputs.repo}/vm/net.sh`, ["up", "--bridge", inputs.bridge, "--address", inputs.address], inputs.repo);
            if (r.code !== 0) {
                throw new Error(`bridge ${inputs.bridge} (${inputs.address}): vm/net.sh up failed (exit ${r.code}):\n${tail(r.stderr)}`);
            }
            return { id: freshId(inputs.bridge), outs: { ...inputs } };
        },
        async read(id: string, props: NetworkInputs) {
            const r = await run(`${props.repo}/vm/net.sh`, ["status", "--bridge", props.bridge, "--address", props.address], props.repo);
            if (r.code === 0) {
                return { id, props };
            }
            if (r.code === 1) {
                // gone (a reboot, or removed by hand): the next up makes it again
                return { id: "" };
            }
            throw new Error(`bridge ${props.bridge}: vm/net.sh status failed (exit ${r.code}):\n${tail(r.stderr)}`);
        },
        async diff(_id: string, olds: NetworkInputs, news: NetworkInputs) {
            const replaces = changedKeys({ ...olds }, { ...news }, NETWORK_REPLACE_KEYS);
            return { changes: replaces.length > 0 || olds.repo !== news.repo || codeChanged(olds, news), replaces, deleteBeforeReplace: true };
        },
        async update(_id: string, _olds: NetworkInputs, news: NetworkInputs) {
            return { outs: { ...news } };
        },
        async delete(_id: string, props: NetworkInputs) {
            await deleteNetwork(run, props);
        },
    };
}

/** The arguments of `vm.sh start` for these inputs (the host key comes on stdin). */
export function vmStartArgs(v: VmInputs): string[] {
    return [
        "start",
        "--name", v.name,
        "--address", v.address,
        "--bridge", v.bridge,
        "--tap", v.tap,
        "--mac", v.mac,
        "--state-dir", v.stateDir,
        "--memory", String(v.memoryMb),
        "--authorized-key", v.authorizedKey,
        "--host-key", "-",
        ...(v.fou ? [] : ["--no-fou"]),
    ];
}

/** The report of `vm.sh start`/`status`: the last line of its stdout, as JSON. */
export function parseVmReport(stdout: string): VmReport {
    const line = stdout.trim().split("\n").pop() ?? "";
    try {
        return JSON.parse(line) as VmReport;
    } catch {
        throw new Error(`vm.sh printed no report: ${JSON.stringify(line)}`);
    }
}

/** How errors name a VM: its name, address and SSH port. */
function vmLabel(v: { name: string; address: string }): string {
    return `VM ${v.name} (${v.address.split("/")[0]}, SSH port 22)`;
}

/**
 * A VM: `vm/vm.sh start` (which waits for its sshd, and adopts or replaces what an interrupted
 * start left); gone when `vm.sh status` finds no qemu, a qemu that never answered, one whose tap
 * left the bridge, or another process than the one created (a VM started anew by hand). Every
 * change but the repository path replaces it, deleting first (it keeps its address, tap and
 * state dir). Delete is `vm.sh stop`, which is fine with a VM already gone.
 */
function makeVmProvider(run: Run) {
    // Every input but the repository path (moving the checkout keeps the VM) and the private
    // key (its public half stands for it).
    const VM_REPLACE_KEYS = ["name", "address", "bridge", "tap", "mac", "stateDir", "memoryMb", "fou", "authorizedKey", "hostPublicKey", "network"] as const;
    return {
        async create(inputs: VmInputs) {
            const r = await run(`${inputs.repo}/vm/vm.sh`, vmStartArgs(inputs), inputs.repo, inputs.hostPrivateKey);
            if (r.code !== 0) {
                throw new Error(`${vmLabel(inputs)}: vm/vm.sh start failed (exit ${r.code}):\n${tail(r.stderr)}`);
            }
            const report = parseVmReport(r.stdout);
            if (report.hostKey !== inputs.hostPublicKey) {
                throw new Error(`${vmLabel(inputs)}: booted with host key ${report.hostKey}, not the stack's ${inputs.hostPublicKey}`);
            }
            const { hostPrivateKey: _, ...outs } = inputs;
            return { id: freshId(inputs.name), outs: { ...outs, report } };
        },
        async read(id: string, props: VmOutputs) {
            const r = await run(`${props.repo}/vm/vm.sh`, ["status", "--state-dir", props.stateDir], props.repo);
            if (r.code === 1) {
                // not running, or not usable: the next up starts it again
                return { id: "" };
            }
            if (r.code !== 0) {
                throw new Error(`${vmLabel(props)}: vm/vm.sh status failed (exit ${r.code}):\n${tail(r.stderr)}`);
            }
            const now = parseVmReport(r.stdout);
            // Another qemu in the same state dir is another machine (a start by hand after a
            // crash): it has none of what the stack configured on this one.
            return now.pid === props.report?.pid ? { id, props } : { id: "" };
        },
        async diff(_id: string, olds: VmOutputs, news: VmInputs) {
            const replaces = changedKeys({ ...olds }, { ...news }, VM_REPLACE_KEYS);
            return { changes: replaces.length > 0 || olds.repo !== news.repo || codeChanged(olds, news), replaces, deleteBeforeReplace: true };
        },
        async update(_id: string, olds: VmOutputs, news: VmInputs) {
            return { outs: { ...olds, repo: news.repo } };
        },
        async delete(_id: string, props: VmOutputs) {
            const r = await run(`${props.repo}/vm/vm.sh`, ["stop", "--state-dir", props.stateDir, "--tap", props.tap], props.repo);
            if (r.code !== 0) {
                throw new Error(`${vmLabel(props)}: vm/vm.sh stop failed (exit ${r.code}):\n${tail(r.stderr)}`);
            }
        },
    };
}

/** Every function localProviders calls, directly or through another: each is emitted into its module. */
const LOCAL_PROVIDER_HELPERS = [
    scriptRunner, watchEngine, tail, freshId, changedKeys, codeChanged,
    deleteNetwork, makeNetworkProvider, vmStartArgs, parseVmReport, vmLabel, makeVmProvider,
];

/** The bridge's provider, as {@link NETWORK_PROVIDER_MODULE}'s handler returns it. */
export type NetworkProvider = ReturnType<typeof makeNetworkProvider>;
/** A VM's provider, as {@link VM_PROVIDER_MODULE}'s handler returns it. */
export type VmProvider = ReturnType<typeof makeVmProvider>;

/** The `__provider` text of the bridge's dynamic resource. */
export const NETWORK_PROVIDER_MODULE = providerModule(localProviders, { member: "networkProvider", helpers: LOCAL_PROVIDER_HELPERS });
/** The `__provider` text of a VM's dynamic resource. */
export const VM_PROVIDER_MODULE = providerModule(localProviders, { member: "vmProvider", helpers: LOCAL_PROVIDER_HELPERS });
