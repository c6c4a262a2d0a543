import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { dependsOnToo } from "../lib/options";
import { DriftProbe } from "./driftProbe";
import { shq } from "./shell";

/**
 * A Linux machine the tunnel components configure over SSH. Local qemu VMs and EC2 instances
 * both provide one, so every component works the same on either.
 */
export interface TunnelHost {
    /** Short name, used in resource names and default interface names (`fto<peer>`). */
    readonly name: string;
    /** Address of the host on the underlay network: the tunnel's `local`/`remote`. */
    readonly underlayAddress: pulumi.Input<string>;
    /** Underlay device, the tunnel's `dev` (e.g. `eth0`). */
    readonly device: pulumi.Input<string>;
    /** How to reach the host; holds a private key, so it is kept secret. */
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** Resources that must exist before the host can be configured (the VM itself). */
    readonly readyAfter?: pulumi.Resource[];
    /**
     * Changes when the machine is replaced (a VM's fresh host key, an EC2 instance id). Every
     * command lists it in its triggers: a new machine has none of the old one's configuration,
     * so each step must run again rather than merely update its stored connection.
     */
    readonly identity?: pulumi.Input<string>;
    /**
     * The connection's user is not root: every script runs as `sudo -n /bin/sh -c '…'`, and a
     * sudo that would ask for a password fails at once with that said (never hangs on a prompt).
     */
    readonly sudo?: boolean;
    /**
     * The resource whose deletion takes the machine away (a local VM, an EC2 instance). Every
     * command on the host is `deletedWith` it: undoing a tunnel on a machine that is itself being
     * deleted (or is already gone) is pointless, and would wait on a host that cannot answer.
     * Unset for machines the stack does not own: those always get their undo.
     */
    readonly deletedWith?: pulumi.Resource;
    /**
     * Forget, rather than undo, what the stack made on this host when it is removed from the
     * program (Pulumi's `retainOnDelete`): for a host that is gone for good or unreachable, whose
     * deletes could only fail. An explicit opt-in (`fou-tunnel:forgetHosts`), never a default.
     */
    readonly retainOnDelete?: boolean;
}

/** The same host, reached with some connection settings changed (e.g. `perDialTimeout`). */
export function withConnection(host: TunnelHost, patch: Partial<command.types.input.remote.ConnectionArgs>): TunnelHost {
    return { ...host, connection: pulumi.secret(pulumi.output(host.connection).apply((c) => ({ ...c, ...patch }))) };
}

/** A create/delete pair of scripts for one remote command. */
export interface CommandScripts {
    readonly create: string;
    /** Undo of create; omitted when there is nothing to undo. */
    readonly delete?: string;
    /**
     * Shell functions both may call (the fixed host library, `components/sh/`), defined once
     * ahead of them in the step's program.
     */
    readonly library?: string;
}

/** ACTION's script of SCRIPTS as one text a shell runs alone: the library, then the script. */
export function standalone(scripts: CommandScripts, action: StepAction = "create"): string {
    const body = action === "create" ? scripts.create : scripts.delete;
    if (body === undefined) throw new Error(`these scripts have no ${action}`);
    return scripts.library === undefined ? body : `${scripts.library}\n${body}`;
}

export interface HostCommandArgs {
    readonly host: TunnelHost;
    readonly scripts: pulumi.Input<CommandScripts>;
    /** Values whose change means a different object on the host: replace, don't update. */
    readonly triggers: pulumi.Input<unknown>[];
    /**
     * How a refresh sees whether the object is still there: a shell body that exits 0 when it is
     * as declared, and the object's name for messages. Set: a {@link DriftProbe} beside the
     * command. Its id is an argument of the command's `update` line (`/bin/sh -s create
     * drift-probe-<id>`, which the program does not read), so a probe replaced after a refresh
     * found drift changes an input that is no trigger, and the command plugin updates the command
     * by running that line: the idempotent create, which rebuilds what is missing and nothing else.
     */
    readonly probe?: { readonly check: pulumi.Input<string>; readonly object: string };
}

/**
 * `sudo -n /bin/sh -c 'SCRIPT'` for a user that is not root, after checking that sudo needs no
 * password: `sudo -n` fails instead of prompting, and the message names the user and the fix.
 * For scripts run outside the command plugin (the drift probe, the first look at a host).
 */
export function withSudo(script: string): string {
    return [
        "if ! sudo -n true 2>/dev/null; then",
        '  echo "fou-tunnel: $(hostname): user $(id -un) cannot use sudo without a password (sudo -n): allow it (NOPASSWD) for this user, or connect as root" >&2; exit 1',
        "fi",
        `exec sudo -n /bin/sh -c ${shq(script)}`,
    ].join("\n");
}

/** What a step's shell is asked to run: the create or the delete of its program. */
export type StepAction = "create" | "delete";

/**
 * The command line of a step: `/bin/sh -s create` (through `sudo -n` for a user that is not
 * root), the program itself coming on stdin ({@link stepProgram}). The line stays short, so the
 * command plugin's error (`Process exited with status 1: running "…":` followed by what the
 * step printed) leads with the host's own reason instead of the whole script; and every step runs
 * under `/bin/sh`, as root or not, whatever the login shell. Whether sudo works is checked once,
 * by the host's first command, which every step waits for.
 */
export function stepCommandLine(action: StepAction, sudo: boolean): string {
    return `${sudo ? "sudo -n " : ""}/bin/sh -s ${action}`;
}

/**
 * The text a step's shell reads on stdin: the library's functions, the create and the delete as
 * two functions, then a dispatch on the action. The shell runs nothing until it has read the
 * dispatch, the last line, so a connection lost mid-text runs no part of it; the functions read
 * nothing from stdin.
 * Arguments after the action are not read (a drift probe's id rides there).
 */
export function stepProgram(scripts: CommandScripts): string {
    const hasDelete = scripts.delete !== undefined;
    return [
        ...(scripts.library === undefined ? [] : [scripts.library]),
        `fou_create() {\n${scripts.create}\n}`,
        ...(hasDelete ? [`fou_delete() {\n${scripts.delete}\n}`] : []),
        "case ${1-} in",
        "  create) fou_create </dev/null ;;",
        ...(hasDelete ? ["  delete) fou_delete </dev/null ;;"] : []),
        '  *) echo "fou-tunnel: this step has no action ${1-}" >&2; exit 2 ;;',
        "esac",
        "",
    ].join("\n");
}

/** How long one remote step may take before Pulumi gives up on it. */
export const COMMAND_TIMEOUTS: pulumi.CustomTimeouts = { create: "5m", update: "5m", delete: "5m" };

/**
 * Declares one remote command of a component. Every such command replaces (rather than
 * re-runs) when its triggers change, and deletes the old object before creating the new one,
 * because old and new share a name on the host (a link name, a port, an address).
 */
export function hostCommand(name: string, args: HostCommandArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    return hostStep(name, args, opts).command;
}

/** A remote command and, when it has one, its drift probe. */
export interface HostStep {
    readonly command: command.remote.Command;
    readonly probe?: DriftProbe;
}

/** {@link hostCommand}, returning the probe too. */
export function hostStep(name: string, args: HostCommandArgs, opts: pulumi.CustomResourceOptions): HostStep {
    const asRoot = (s: string) => (args.host.sudo ? withSudo(s) : s);
    const scripts = pulumi.output(args.scripts);
    const probe = args.probe
        ? new DriftProbe(`${name}-probe`, { host: args.host, check: pulumi.output(args.probe.check).apply(asRoot), object: args.probe.object }, { parent: opts.parent, deletedWith: opts.deletedWith, retainOnDelete: opts.retainOnDelete ?? args.host.retainOnDelete })
        : undefined;
    const triggers = args.host.identity === undefined ? args.triggers : [...args.triggers, args.host.identity];
    const sudo = args.host.sudo ?? false;
    const cmd = new command.remote.Command(
        name,
        {
            connection: args.host.connection,
            create: stepCommandLine("create", sudo),
            // The program is known at preview whenever its scripts are: a preview shows it.
            stdin: scripts.apply(stepProgram),
            // The probe's id, an argument the program does not read: a probe replaced after a
            // refresh found drift changes this input (no trigger), and the plugin runs it: the
            // same create.
            ...(probe ? { update: probe.id.apply((id) => `${stepCommandLine("create", sudo)} ${shq(`drift-probe-${id}`)}`) } : {}),
            // Resolving to undefined leaves `delete` unset: nothing to run at destroy. A delete
            // runs with the stdin stored at the last create, so it reads the delete of that create.
            delete: scripts.apply((s) => (s.delete === undefined ? undefined : stepCommandLine("delete", sudo))) as pulumi.Output<string>,
            // No script reads the previous output (the plugin's PULUMI_COMMAND_* variables; what a
            // delete needs is on the host), and the plugin sends it as SSH env requests that sshd
            // refuses unless AcceptEnv lists them, warning on every update and delete: don't.
            addPreviousOutputInEnv: false,
            triggers,
        },
        {
            ...opts,
            deleteBeforeReplace: true,
            deletedWith: opts.deletedWith ?? args.host.deletedWith,
            retainOnDelete: opts.retainOnDelete ?? args.host.retainOnDelete,
            // No step may wait forever on a host (dials are bounded by the connection too).
            customTimeouts: opts.customTimeouts ?? COMMAND_TIMEOUTS,
            dependsOn: dependsOnToo(opts.dependsOn, args.host.readyAfter),
        },
    );
    return { command: cmd, probe };
}
