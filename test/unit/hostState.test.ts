/**
 * The create/delete wrapper of a host object, run through dash, bash and busybox sh against a
 * throwaway state directory: a correct object is adopted with its instance id, a missing one is
 * applied and gets a new id, an apply that the check does not confirm fails and is put back,
 * and delete leaves no state behind.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { standalone } from "../../components/host";
import { HostObject, objectScripts as stepScripts, stateFile } from "../../components/hostState";
import { HOST_SHELLS, HostShell, runIn } from "./hostShells";

/** A throwaway state directory and object file for one shell's tests, and how they run scripts. */
interface Bench {
    readonly root: string;
    readonly objFile: string;
    /** Runs a script (its state files under ROOT, as `stateFile(…, root)` gives them). */
    run(script: string): { out: string; code: number };
    /** Writes FILE through the shell under test. */
    write(file: string, text: string): void;
    /** The object is a file holding "ok"; `broken` makes apply write something the check rejects. */
    object(broken?: boolean): HostObject;
    readonly idFile: string;
    instance(out: string): string | undefined;
}

function bench(shell: HostShell): Bench {
    const dir = mkdtempSync(path.join(tmpdir(), `fou-state-${shell.argv.join("-")}-`));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const root = path.join(dir, "var-lib");
    const objFile = path.join(dir, "object");
    return {
        root,
        objFile,
        run(script) {
            const r = runIn(shell, `hostname() { echo k9; }\n${script}`);
            return { out: r.code === 0 ? r.stdout : r.stdout + r.stderr, code: r.code };
        },
        write(file, text) {
            assert.equal(runIn(shell, `echo ${text} > '${file}'`).code, 0);
        },
        object: (broken = false) => ({
            apply: `echo ${broken ? "bad" : "ok"} > '${objFile}'; echo applied`,
            check: `if [ "$(cat '${objFile}' 2>/dev/null)" != ok ]; then echo "object is missing"; exit 1; fi`,
            remove: `rm -f '${objFile}'`,
            report: "echo size=2",
        }),
        idFile: stateFile("k1-thing", "id", "proj.stack", root),
        instance: (out) => /^instance=(.*)$/m.exec(out)?.[1],
    };
}

/** An object's create and delete as a host runs each alone: the host library, then the script. */
function objectScripts(...args: Parameters<typeof stepScripts>): { create: string; delete: string } {
    const s = stepScripts(...args);
    return { create: standalone(s), delete: standalone(s, "delete") };
}

// Each shell's tests share its bench and run in this order.
for (const shell of HOST_SHELLS) {
    const b = bench(shell);
    createAndDelete(shell, b);
    claims(shell, b);
    exclusiveFailures(shell, b);
    failedCreates(shell, b);
}

/** One stack's object: adopted, applied, given an id, checked, deleted. */
function createAndDelete(shell: HostShell, { run, object, idFile, instance, root, objFile }: Bench): void {
    test(`${shell.name}: state files are namespaced by stack and named after the resource, hostile characters folded`, () => {
        assert.equal(stateFile("k1-thing", "id", "proj.stack"), "/var/lib/fou-tunnel/proj.stack/k1-thing.id");
        assert.equal(idFile, path.join(root, "proj.stack", "k1-thing.id"));
        assert.equal(stateFile("a/b c;d", "id", "p.s"), "/var/lib/fou-tunnel/p.s/a_b_c_d.id");
    });

    test(`${shell.name}: create applies a missing object, records an id, and adopts it unchanged when run again`, () => {
        const s = objectScripts(object(), idFile);
        const first = run(s.create);
        assert.equal(first.code, 0, first.out);
        assert.match(first.out, /applied/);
        assert.match(first.out, /^size=2$/m);
        const id = instance(first.out);
        assert.match(id ?? "", /^[0-9a-f-]{36}$/);
        const second = run(s.create);
        assert.equal(second.code, 0, second.out);
        assert.doesNotMatch(second.out, /applied/, "a correct object is not applied again");
        assert.equal(instance(second.out), id);
    });

    test(`${shell.name}: an object changed behind the stack's back is applied again and gets a new id`, () => {
        const s = objectScripts(object(), idFile);
        const id = instance(run(s.create).out);
        rmSync(objFile);
        const again = run(s.create);
        assert.match(again.out, /applied/);
        assert.notEqual(instance(again.out), id);
    });

    test(`${shell.name}: an id file left empty (a create killed as it wrote it) gets an id on the next create; the object is kept`, () => {
        const s = objectScripts(object(), idFile);
        assert.equal(run(s.create).code, 0);
        writeFileSync(path.join(root, "proj.stack", "k1-thing.id"), "");
        const again = run(s.create);
        assert.equal(again.code, 0, again.out);
        assert.doesNotMatch(again.out, /applied/, "the object passes its check: it is not applied again");
        assert.match(instance(again.out) ?? "", /^[0-9a-f-]{36}$/);
        // Written in place: nothing else is left in the state directory.
        assert.deepEqual(readdirSync(path.join(root, "proj.stack")), ["k1-thing.id"]);
    });

    test(`${shell.name}: an apply that the check does not confirm fails, naming the host and what differs`, () => {
        rmSync(objFile, { force: true });
        const r = run(objectScripts(object(true), idFile).create);
        assert.equal(r.code, 1);
        assert.match(r.out, /fou-tunnel: k9: applied, but the host does not show it: object is missing/);
    });

    test(`${shell.name}: delete removes the object and its state, twice without error, and leaves no empty directory`, () => {
        const s = objectScripts(object(), idFile);
        run(s.create);
        for (let i = 0; i < 2; i++) {
            const r = run(s.delete!);
            assert.equal(r.code, 0, r.out);
        }
        assert.ok(!existsSync(objFile));
        assert.ok(!existsSync(root), `left: ${existsSync(root) ? readdirSync(root).join(",") : ""}`);
    });
}

/** Objects claimed by more than one stack: a shared one lives while any claims it; an exclusive one has one owner. */
function claims(shell: HostShell, { run, write, object, root, objFile }: Bench): void {
    test(`${shell.name}: a shared object is removed with the last claim: two stacks, either order`, () => {
        const shared = (): HostObject => ({ ...object(), shared: "thing-1" });
        const a = objectScripts(shared(), stateFile("k1-thing", "id", "proj.a", root));
        const b = objectScripts(shared(), stateFile("k1-thing", "id", "proj.b", root));
        rmSync(objFile, { force: true });
        assert.match(run(a.create).out, /applied/);
        assert.doesNotMatch(run(b.create).out, /applied/, "the second stack adopts the object");
        assert.equal(run(a.delete!).code, 0);
        assert.ok(existsSync(objFile), "the other stack's claim keeps the object");
        assert.equal(run(b.delete!).code, 0);
        assert.ok(!existsSync(objFile), "the last claim's delete removes it");
        assert.ok(!existsSync(root), "no state left");
    });

    test(`${shell.name}: an exclusive object: the stack that made it owns it; another stack and a hand-made one are refused, and nothing of theirs is touched`, () => {
        // "present": the name is taken at all, whatever the object's content (the file exists).
        const exclusive = (): HostObject => ({ ...object(), exclusive: { key: "thing-x", present: `[ -e '${objFile}' ]`, what: "thing x" } });
        const a = objectScripts(exclusive(), stateFile("k1-thing", "id", "proj.a", root));
        const b = objectScripts(exclusive(), stateFile("k1-thing", "id", "proj.b", root));
        rmSync(objFile, { force: true });
        const made = run(a.create);
        assert.equal(made.code, 0, made.out);
        assert.match(made.out, /applied/);
        const again = run(a.create);
        assert.equal(again.code, 0, again.out);
        assert.doesNotMatch(again.out, /applied/, "its owner adopts it on a re-run");

        const other = run(b.create);
        assert.notEqual(other.code, 0);
        assert.match(other.out, /fou-tunnel: k9: thing x belongs to another stack \(its state: .*proj\.a\/k1-thing\.id\); not taking it over/);
        assert.equal(run(b.delete!).code, 0, "the refused stack's delete (of nothing) succeeds");
        assert.ok(existsSync(objFile), "and leaves the owner's object");

        // Changed behind its owner's back: the owner repairs it.
        write(objFile, "changed");
        assert.match(run(a.create).out, /applied/);
        assert.equal(run(a.delete!).code, 0);
        assert.ok(!existsSync(objFile) && !existsSync(root), "the owner's delete removes it, and every state file");

        // Made by hand (or another tool), with the same content the stack would make: still refused.
        write(objFile, "ok");
        const hand = run(a.create);
        assert.notEqual(hand.code, 0);
        assert.match(hand.out, /fou-tunnel: k9: thing x exists already and this stack did not make it \(by hand, or another tool\); remove it or choose another name/);
        assert.equal(run(a.delete!).code, 0);
        assert.ok(existsSync(objFile), "a refused create's delete leaves the hand-made object");
        rmSync(objFile, { force: true });
        assert.ok(!existsSync(root), `no state left: ${existsSync(root) ? readdirSync(root).join(",") : ""}`);
    });
}

/** An exclusive object after a crashed or a failed create. */
function exclusiveFailures(shell: HostShell, { run, object, idFile, root, objFile }: Bench): void {
    test(`${shell.name}: an exclusive object: a crashed create (owner recorded, no id yet) is adopted; an owner whose state is gone holds nothing`, () => {
        const exclusive = (): HostObject => ({ ...object(), exclusive: { key: "thing-x", present: `[ -e '${objFile}' ]`, what: "thing x" } });
        const idA = stateFile("k1-thing", "id", "proj.a", root);
        const a = objectScripts(exclusive(), idA);
        const b = objectScripts(exclusive(), stateFile("k1-thing", "id", "proj.b", root));
        rmSync(objFile, { force: true });
        assert.equal(run(a.create).code, 0);
        // The run was killed after apply, before its id was written.
        rmSync(idA);
        const resumed = run(a.create);
        assert.equal(resumed.code, 0, resumed.out);
        assert.doesNotMatch(resumed.out, /applied/);
        // Stack a removed without its delete (its state dir gone) and the object deleted by hand:
        // the name is free again for stack b.
        rmSync(path.join(root, "proj.a"), { recursive: true });
        rmSync(objFile);
        const taken = run(b.create);
        assert.equal(taken.code, 0, taken.out);
        assert.equal(run(b.delete!).code, 0);
        assert.ok(!existsSync(objFile) && !existsSync(root));
    });

    test(`${shell.name}: an exclusive object whose create fails leaves no claim and no object: what it made is put back`, () => {
        const present = `[ -e '${objFile}' ]`;
        const failing = (half: boolean): HostObject => ({
            ...object(),
            apply: half ? `echo half > '${objFile}'; exit 3` : "echo nothing made >&2; exit 3",
            exclusive: { key: "thing-x", present, what: "thing x" },
        });
        rmSync(objFile, { force: true });
        const none = run(objectScripts(failing(false), idFile, "k1: thing x").create);
        assert.equal(none.code, 3);
        assert.match(none.out, /^fou-tunnel: k1: thing x: nothing made\nfou-tunnel: k1: thing x: put back what this step changed\n$/);
        assert.ok(!existsSync(root), `left: ${existsSync(root) ? readdirSync(root).join(",") : ""}`);
        const half = run(objectScripts(failing(true), idFile).create);
        assert.equal(half.code, 3);
        assert.ok(!existsSync(objFile), "the half-made object is removed");
        assert.ok(!existsSync(root), `no claim or state left: ${existsSync(root) ? readdirSync(root).join(",") : ""}`);
        // The next create (which applies correctly) makes and owns it.
        const fixed = objectScripts({ ...object(), exclusive: { key: "thing-x", present, what: "thing x" } }, idFile);
        const done = run(fixed.create);
        assert.equal(done.code, 0, done.out);
        assert.equal(run(fixed.delete!).code, 0);
        assert.ok(!existsSync(objFile) && !existsSync(root));
    });
}

/** A failed create puts back what it changed, and only that. */
function failedCreates(shell: HostShell, { run, object, idFile, root, objFile }: Bench): void {
    test(`${shell.name}: a create whose check cannot pass after apply puts the object back; the reason comes first, then what was done`, () => {
        rmSync(objFile, { force: true });
        const r = run(objectScripts(object(true), idFile, "k1: thing").create);
        assert.equal(r.code, 1);
        assert.match(r.out, /^applied\nfou-tunnel: k1: thing: applied, but the host does not show it: object is missing\nfou-tunnel: k1: thing: put back what this step changed\n$/);
        assert.ok(!existsSync(objFile), "the object it wrote is removed");
        assert.ok(!existsSync(root), "no id file, no directory");
    });

    test(`${shell.name}: an apply stops at its first failing command (set -e holds inside it), and its error names the host and object`, () => {
        rmSync(objFile, { force: true });
        const obj: HostObject = { ...object(), apply: `echo ok > '${objFile}'; echo "RTNETLINK answers: File exists" >&2; false; echo reached` };
        const r = run(objectScripts(obj, idFile, "k1: thing").create);
        assert.equal(r.code, 1);
        assert.doesNotMatch(r.out, /reached/);
        assert.match(r.out, /^fou-tunnel: k1: thing: RTNETLINK answers: File exists\n/);
        assert.ok(!existsSync(objFile), "what the apply made before it failed is removed");
    });

    test(`${shell.name}: a failed create of a shared object keeps it while another stack claims it`, () => {
        const shared = (broken: boolean): HostObject => ({ ...object(broken), shared: "thing-2" });
        rmSync(objFile, { force: true });
        const a = objectScripts(shared(false), stateFile("k1-thing", "id", "proj.a", root));
        assert.equal(run(a.create).code, 0);
        rmSync(objFile);
        // Stack b finds it missing, applies, and fails: stack a's claim keeps the object.
        const b = run(objectScripts(shared(true), stateFile("k1-thing", "id", "proj.b", root)).create);
        assert.equal(b.code, 1, b.out);
        assert.ok(existsSync(objFile), "stack a still claims it");
        assert.equal(run(a.delete!).code, 0);
        assert.ok(!existsSync(objFile) && !existsSync(root), `left: ${existsSync(root) ? readdirSync(root).join(",") : ""}`);
    });

    test(`${shell.name}: a create that adopts a correct object and then fails does not remove it`, () => {
        rmSync(objFile, { force: true });
        const s = objectScripts(object(), idFile);
        assert.equal(run(s.create).code, 0);
        const failing = objectScripts({ ...object(), report: "echo late failure >&2; exit 4" }, idFile);
        const r = run(failing.create);
        assert.equal(r.code, 4);
        assert.ok(existsSync(objFile), "an object this run did not change stays");
        assert.equal(run(s.delete!).code, 0);
    });
}
