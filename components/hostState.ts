import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "crypto";
import { CommandScripts, hostStep, TunnelHost } from "./host";
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

/** `$owner`: the id file path in owner file `$o`, empty when there is none. */
const READ_OWNER = 'owner=; if [ -f "$o" ]; then read -r owner < "$o" || true; fi';

/**
 * Create and delete of a {@link HostObject}. Create adopts an object that already passes its
 * check — a re-run by the command plugin (any input change re-runs create), or a leftover of a
 * crashed run — and keeps its instance id, so nothing built on it is replaced; otherwise it
 * applies the object, checks it, and records a fresh instance id. Dependants list the id in
 * their triggers: an object that really was rebuilt rebuilds what sits on it.
 *
 * A create that fails once it has begun to apply puts back what it changed ({@link undoOnFailure}):
 * Pulumi records nothing for a failed create, so no delete would ever run for it. LABEL names the
 * host and object in messages (`k1: link ftok2`); default the host's own name.
 */
export function objectScripts(obj: HostObject, idFile: string, label?: string): CommandScripts {
    const root = stateRootOf(idFile);
    const dir = obj.shared === undefined ? undefined : `${root}/shared/${obj.shared}`;
    // The claimant: this stack's namespace and the resource, from the id file's path.
    const shared = dir === undefined ? undefined : { dir, claim: `${dir}/${idFile.split("/").slice(-2).join(".").replace(/\.id$/, "")}` };
    const ex = obj.exclusive;
    if (ex !== undefined && shared !== undefined) throw new Error("a host object is either shared or exclusive, not both");
    const owner = ex === undefined ? undefined : `${root}/owners/${ex.key.replace(/[^A-Za-z0-9._-]/g, "_")}`;
    const files: ObjectFiles = { root, idFile, shared, owner };
    const remove = obj.remove === undefined ? [] : [`(\n${obj.remove}\n)`];
    return { create: objectCreate(obj, files, remove, label), delete: objectDelete(files, remove) };
}

/** Where an object's create and delete keep what they know on the host. */
interface ObjectFiles {
    /** The state root (`/var/lib/fou-tunnel`). */
    readonly root: string;
    readonly idFile: string;
    /** A shared object's claims directory, and this resource's claim in it. */
    readonly shared?: { readonly dir: string; readonly claim: string };
    /** An exclusive object's owner file. */
    readonly owner?: string;
}

/**
 * The create: refuses a name someone else holds (exclusive), puts back what it changed when it
 * fails, applies the object unless it passes its check already, then records its id (and claim).
 */
function objectCreate(obj: HostObject, files: ObjectFiles, remove: string[], label?: string): string {
    const { shared, owner } = files;
    return [
        "set -eu",
        sh`f=${files.idFile}`,
        labelLine(label),
        ...(obj.exclusive && owner ? ownerCheckLines(obj.exclusive, owner) : []),
        ...undoOnFailure({
            undo: [
                ...(shared ? [`if ! ${claimed(shared.dir)}; then`, ...remove, "fi"] : remove),
                // A claim made by this run goes with the object: no delete will ever drop it.
                ...(owner ? ['if [ "$claimed" = 1 ]; then rm -f "$o"; fi', sh`rmdir ${`${files.root}/owners`} ${files.root} 2>/dev/null || true`] : []),
            ],
        }),
        ...(owner
            ? ['if [ "$owner" != "$f" ]; then [ -d "${o%/*}" ] || mkdir -p "${o%/*}"; printf \'%s\\n\' "$f" > "$o.tmp"; mv "$o.tmp" "$o"; claimed=1; fou_changing=1; fi']
            : []),
        // Once, as a function (a subshell: the check's `exit` ends only it), for both looks.
        `fou_check() (\n${obj.check}\n)`,
        "fresh=",
        "if ! fou_check >/dev/null 2>&1; then",
        "  fou_changing=1",
        ...applyStep(obj.apply),
        '  if ! why=$(fou_check 2>&1); then echo "fou-tunnel: $fou_at: applied, but the host does not show it: $why" >&2; exit 1; fi',
        "  fresh=1",
        "fi",
        // A rebuilt object gets a new id. The id is written in place, not renamed into it: one
        // line is one write, and an id file left empty by a kill reads as none (-s), so the
        // next create gives it an id.
        'if [ -n "$fresh" ] || [ ! -s "$f" ]; then [ -d "${f%/*}" ] || mkdir -p "${f%/*}"; read -r u < /proc/sys/kernel/random/uuid; printf \'%s\\n\' "$u" > "$f"; fi',
        ...(shared ? [sh`[ -d ${shared.dir} ] || mkdir -p ${shared.dir}; [ -e ${shared.claim} ] || : > ${shared.claim}`] : []),
        'read -r id < "$f"; echo "instance=$id"',
        ...(obj.report ? [obj.report] : []),
    ].join("\n");
}

/**
 * Sets `owner` from owner file `$o` and `claimed=0`; fails when another stack owns the name, or
 * when something this stack did not make holds it.
 */
function ownerCheckLines(ex: NonNullable<HostObject["exclusive"]>, owner: string): string[] {
    return [
        // Whether anything holds the name at all, whatever its settings.
        `fou_present() {\n${ex.present}\n}`,
        sh`o=${owner}`,
        "claimed=0",
        READ_OWNER,
        // An owner whose id file is gone (its stack was removed without its delete) holds nothing.
        'if [ -n "$owner" ] && [ "$owner" != "$f" ] && [ -e "$owner" ]; then',
        sh`  printf 'fou-tunnel: %s: %s belongs to another stack (its state: %s); not taking it over\\n' "$fou_at" ${ex.what} "$owner" >&2; exit 1`,
        "fi",
        'if [ "$owner" != "$f" ] && fou_present >/dev/null 2>&1; then',
        sh`  printf 'fou-tunnel: %s: %s exists already and this stack did not make it (by hand, or another tool); remove it or choose another name\\n' "$fou_at" ${ex.what} >&2; exit 1`,
        "fi",
    ];
}

/** The delete: removes the object only while this resource owns it, or holds the last claim on it. */
function objectDelete(files: ObjectFiles, remove: string[]): string {
    const { idFile, shared, owner } = files;
    return [
        "set -eu",
        ...(owner
            ? [
                  sh`f=${idFile}; o=${owner}`,
                  // Only the owner removes it.
                  READ_OWNER,
                  'if [ "$owner" = "$f" ]; then',
                  ...remove,
                  '  rm -f "$o"; rmdir "${o%/*}" 2>/dev/null || true',
                  "fi",
              ]
            : shared
            ? [
                  sh`rm -f ${shared.claim}`,
                  // Another stack still uses the object: leave it to that stack's delete.
                  `if ! ${claimed(shared.dir)}; then`,
                  ...remove,
                  sh`  rmdir ${shared.dir} 2>/dev/null || true; rmdir ${`${files.root}/shared`} 2>/dev/null || true`,
                  "fi",
              ]
            : remove),
        sh`rm -f ${idFile}`,
        removeEmptyStateDirs(idFile),
    ].join("\n");
}

/** `fou_at=<label>`: how a step's messages name the host and object; default the host's own name. */
export function labelLine(label?: string): string {
    return label === undefined ? "fou_at=$(hostname)" : sh`fou_at=${label}`;
}

/**
 * Lines that run APPLY (a script body) with `set -e` in force inside it, its output kept: on
 * success printed as it came, on failure on stderr behind `fou-tunnel: <fou_at>:`, so the
 * step's error leads with the host, the object and the host's own reason, then the script
 * exits with the apply's status. (Run as an `if` condition, `set -e` would not stop the apply
 * at its first failing command.)
 */
export function applyStep(apply: string): string[] {
    return [
        "  set +e",
        `  fou_out=$(set -e; (\n${apply}\n) 2>&1)`,
        "  fou_rc=$?",
        "  set -e",
        '  if [ "$fou_rc" -ne 0 ]; then printf \'fou-tunnel: %s: %s\\n\' "$fou_at" "${fou_out#fou-tunnel: }" >&2; exit "$fou_rc"; fi',
        '  if [ -n "$fou_out" ]; then printf \'%s\\n\' "$fou_out"; fi',
    ];
}

/**
 * An EXIT trap that, when the script fails after `fou_changing=1` (it began to change the host),
 * runs UNDO to put back what it changed, and says so after the reason: Pulumi records nothing for
 * a failed create, so nothing would ever delete it. `fou_at` names the host and step.
 */
export function undoOnFailure(s: { undo: string[] }): string[] {
    return [
        "fou_changing=",
        "fou_undo() {",
        "  fou_rc=$?",
        "  trap - EXIT",
        '  if [ "$fou_rc" -ne 0 ] && [ -n "$fou_changing" ]; then',
        `    if fou_why=$( (set -e\n${s.undo.join("\n")}\n) 2>&1); then`,
        '      echo "fou-tunnel: $fou_at: put back what this step changed" >&2',
        "    else",
        '      echo "fou-tunnel: $fou_at: could not put back what this step changed: $fou_why" >&2',
        "    fi",
        "  fi",
        '  exit "$fou_rc"',
        "}",
        "trap fou_undo EXIT",
    ];
}

/** A shell test that DIR (a shared object's claims) holds a claim: a glob, no `ls | grep`. */
function claimed(dir: string): string {
    return `{ for fou_c in ${shq(dir)}/*; do [ -e "$fou_c" ] && break; done; [ -e "$fou_c" ]; }`;
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
