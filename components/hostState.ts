import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "crypto";
import { CommandScripts, hostStep, TunnelHost } from "./host";
import { hostFunctions, hostLibrary } from "./hostLibrary";
import { sh, shq } from "./shell";

/**
 * What the stack remembers *on the host*. The genuine command plugin gives a delete script no
 * reliable view of what its create saw (the previous output travels as an SSH env request, which
 * sshd refuses by default), and re-runs a create on any input change; so what a delete or a re-run
 * needs to know lives in small files under `/var/lib/fou-tunnel/<namespace>/`, one namespace per
 * stack, named after the resource. Deleting the last of them removes the directories.
 */
export const STATE_ROOT = "/var/lib/fou-tunnel";

/** `<project>.<stack>`, reduced to file-name characters: two stacks on a host never share files. */
export function stateNamespace(): string {
    return `${pulumi.getProject()}.${pulumi.getStack()}`.replace(/[^A-Za-z0-9._-]/g, "_");
}

/**
 * `/var/lib/fou-tunnel/<namespace>/<resource>.<suffix>`. ROOT is for tests, which keep the
 * state of the scripts they run in a directory of their own: everything a script derives from
 * its state file (the owners and shared directories beside the namespace) follows it.
 */
export function stateFile(resource: string, suffix: string, namespace = stateNamespace(), root = STATE_ROOT): string {
    return `${root}/${namespace}/${resource.replace(/[^A-Za-z0-9._-]/g, "_")}.${suffix}`;
}

/** The state root a state file lives under (`<root>/<namespace>/<file>`). */
export function stateRootOf(file: string): string {
    return file.split("/").slice(0, -2).join("/");
}

/** Removes the namespace directory and the root when they are empty (quietly: others may use them). */
export function removeEmptyStateDirs(file: string): string {
    const dir = file.slice(0, file.lastIndexOf("/"));
    return sh`rmdir ${dir} 2>/dev/null || true; rmdir ${stateRootOf(file)} 2>/dev/null || true`;
}

/**
 * One object on a host (a FOU port, a link, an address, a route, a boot unit) as three shell
 * bodies. The component's create and delete are built from them, the boot units replay `apply`,
 * and a drift probe runs `check`.
 */
export interface HostObject {
    /** Makes the object exist as declared. Idempotent: replaying it on a correct host changes nothing. */
    readonly apply: string;
    /** Exits 0 when the object exists exactly as declared; otherwise prints what differs and exits 1. */
    readonly check: string;
    /** Removes the object; does nothing when it is gone, fails on a real error. Omitted: nothing to undo. */
    readonly remove?: string;
    /** Lines printed after the instance line on every create (e.g. `mtu=1472`). */
    readonly report?: string;
    /**
     * A host-wide name for an object that other stacks may use too (a FOU port of the same
     * binding is one kernel object, whoever added it): every create holds a claim on it under
     * `/var/lib/fou-tunnel/shared/<name>/`, and remove runs only when the last claim is dropped.
     */
    readonly shared?: string;
    /**
     * A host-wide name for an object only one owner may have (an interface name, a route's
     * destination), and the shell test that says something holds that name at all. Create
     * records this resource as the owner under `/var/lib/fou-tunnel/owners/<key>` before it
     * applies anything, and refuses a name another stack owns or that something else (a tunnel
     * made by hand, another tool) already uses: it would otherwise replace it, and delete it on
     * destroy. Delete removes the object only while it is the owner.
     */
    readonly exclusive?: { readonly key: string; readonly present: string; readonly what: string };
}

/**
 * Create and delete of a {@link HostObject}. Create adopts an object that already passes its
 * check — a re-run by the command plugin (any input change re-runs create), or a leftover of a
 * crashed run — and keeps its instance id, so nothing built on it is replaced; otherwise it
 * applies the object, checks it, and records a fresh instance id. Dependants list the id in
 * their triggers: an object that really was rebuilt rebuilds what sits on it.
 *
 * A create that fails once it has begun to apply puts back what it changed: Pulumi records
 * nothing for a failed create, so no delete would ever run for it. The fixed logic is shell
 * source (`components/sh/object.sh`, `undo.sh`); the step defines the object's shell bodies as
 * functions and passes its files as quoted variables. LABEL names the host and object in
 * messages (`k1: link ftok2`); default the host's own name.
 */
export function objectScripts(obj: HostObject, idFile: string, label?: string): CommandScripts {
    const root = stateRootOf(idFile);
    const ex = obj.exclusive;
    if (ex !== undefined && obj.shared !== undefined) throw new Error("a host object is either shared or exclusive, not both");
    const shared = obj.shared === undefined ? "" : `${root}/shared/${obj.shared}`;
    // The claimant: this stack's namespace and the resource, from the id file's path.
    const claim = shared === "" ? "" : `${shared}/${idFile.split("/").slice(-2).join(".").replace(/\.id$/, "")}`;
    const owner = ex === undefined ? "" : `${root}/owners/${ex.key.replace(/[^A-Za-z0-9._-]/g, "_")}`;
    const vars = [sh`f=${idFile}; fou_root=${root}; fou_owner=${owner}; fou_shared=${shared}; fou_claim=${claim}`, ...(ex ? [sh`fou_what=${ex.what}`] : [])].join("; ");
    return {
        // The library's functions this kind of object calls, then the object's shell bodies as
        // functions (check, apply and remove in subshells: their `exit` ends only them).
        library: [
            objectLibrary({ owner: ex !== undefined, shared: shared !== "" }),
            `fou_check() (\n${obj.check}\n)`,
            `fou_apply() (\n${obj.apply}\n)`,
            `fou_remove() (\n${obj.remove ?? ":"}\n)`,
            ...(ex ? [`fou_present() {\n${ex.present}\n}`] : []),
            `fou_report() {\n${obj.report ?? ":"}\n}`,
        ].join("\n"),
        create: ["set -eu", vars, labelLine(label), "fou_object_create"].join("\n"),
        delete: ["set -eu", vars, "fou_object_delete"].join("\n"),
    };
}

/** What an object's step carries of undo.sh and object.sh: the functions its kind calls. */
function objectLibrary(kind: { owner: boolean; shared: boolean }): string {
    return [
        hostLibrary("undo.sh"),
        hostFunctions("object.sh", [
            ...(kind.owner ? ["fou_read_owner", "fou_owner_check", "fou_take_name", "fou_drop_name", "fou_owner_delete"] : []),
            ...(kind.shared ? ["fou_claimed"] : []),
            "fou_object_put_back",
            "fou_object_create",
            "fou_object_delete",
        ]),
    ].join("\n");
}

/** `fou_at=<label>`: how a step's messages name the host and object; default the host's own name. */
export function labelLine(label?: string): string {
    return label === undefined ? "fou_at=$(hostname)" : sh`fou_at=${label}`;
}

/** A check line: runs TEST (a shell condition); when it fails, prints WHY and exits 1. */
export function expect(test: string, why: string): string {
    return `if ! { ${test}; }; then echo ${shq(why)}; exit 1; fi`;
}

export interface ObjectCommandArgs {
    readonly host: TunnelHost;
    readonly object: pulumi.Input<HostObject>;
    /** Values whose change means a different object on the host: replace, don't update. */
    readonly triggers: pulumi.Input<unknown>[];
    /** The object, for drift messages: `link ftok2`. */
    readonly what: string;
}

/** An object's command, and what dependants list in their triggers. */
export interface ObjectCommand {
    readonly command: command.remote.Command;
    /**
     * Changes exactly when the object is rebuilt: its triggers (a replace) or its drift probe (a
     * repair) changed. Known at preview time — unlike the command's stdout, which a preview of an
     * update leaves unknown — so a change that only re-runs the create (a new connection, an
     * edited delete script) plans no replacement of what sits on the object.
     */
    readonly instance: pulumi.Output<string>;
}

/** The remote command of one {@link HostObject}, with a drift probe; its instance id kept on the host. */
export function objectCommand(name: string, args: ObjectCommandArgs, opts: pulumi.CustomResourceOptions): ObjectCommand {
    const idFile = stateFile(name, "id");
    const object = pulumi.output(args.object) as pulumi.Output<HostObject>;
    const step = hostStep(
        name,
        {
            host: args.host,
            scripts: object.apply((o) => objectScripts(o, idFile, `${args.host.name}: ${args.what}`)),
            triggers: args.triggers,
            probe: { check: object.apply((o) => o.check), object: args.what },
        },
        opts,
    );
    const instance = pulumi
        .all([pulumi.all(args.triggers), args.host.identity ?? "", step.probe!.id])
        .apply((parts) => createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 32));
    return { command: step.command, instance };
}
