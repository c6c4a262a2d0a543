/**
 * providerModule: a factory and its named helpers become one module text that loads alone (the
 * SDK's own loader, as the dynamic provider host loads `__provider`); and the project's provider
 * texts name nothing their module lacks, so a helper left out of the list fails here, not on a
 * refresh.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import * as ts from "typescript";
import { PROBE_PROVIDER_MODULE } from "../../components/driftProbe";
import { NETWORK_PROVIDER_MODULE, VM_PROVIDER_MODULE } from "../../hosts/localProvider";
import { providerModule } from "../../lib/providerModule";

const requireFromString = require("require-from-string") as (code: string) => { handler: () => unknown };

/** Doubles n. */
function twice(n: number): number {
    return n * 2;
}

/** Calls another helper by name, as the factory does. */
function quadruple(n: number): number {
    // a full-line comment, which is not stored
    return twice(twice(n));
}

/** An async helper, emitted as `async function`. */
async function echoLater(v: string): Promise<string> {
    return v;
}

/** The factory: it hands out its helpers, so the test can call them from the loaded text. */
function factory() {
    return { twice, quadruple, echoLater, provider: { answer: quadruple(10) } };
}

type Exposed = ReturnType<typeof factory>;

test("the module text holds the handler, then each helper as a declaration; it loads alone and its helpers work", async () => {
    const text = providerModule(factory, { helpers: [twice, quadruple, echoLater] });
    assert.match(text, /^exports\.handler = \(\) => \(function factory\(\) \{\n/);
    assert.deepEqual(text.split("\n").filter((l) => /^(async )?function /.test(l)).map((l) => l.replace(/\(.*/, "")), [
        "function twice",
        "function quadruple",
        "async function echoLater",
    ]);
    assert.ok(!/\n[ \t]/.test(text), "no indentation is stored");
    assert.ok(!text.includes("full-line comment"), "full-line comments are not stored");
    const exposed = requireFromString(text).handler() as Exposed;
    assert.equal(exposed.twice(4), 8);
    assert.equal(exposed.quadruple(3), 12);
    assert.equal(await exposed.echoLater("x"), "x");
    assert.deepEqual(exposed.provider, { answer: 40 });
    const provider = requireFromString(providerModule(factory, { member: "provider", helpers: [twice, quadruple, echoLater] })).handler();
    assert.deepEqual(provider, { answer: 40 });
});

test("a helper left out is missing from the loaded text; one that is not a named declaration, or given twice, is refused", () => {
    assert.throws(() => requireFromString(providerModule(factory, { helpers: [quadruple, echoLater] })).handler(), /twice is not defined/);
    const arrow = (n: number) => n;
    assert.throws(() => providerModule(factory, { helpers: [arrow] }), /^Error: providerModule: a helper must be a named function declaration \(got "\(n\)/);
    assert.throws(() => providerModule(factory, { helpers: [twice, twice] }), /^Error: providerModule: twice is given twice$/);
    assert.throws(() => providerModule(factory, { helpers: [factory] }), /^Error: providerModule: factory is given twice$/);
});

/** The names each text uses but does not declare (besides Node's globals), by the TypeScript checker. */
function unresolvedNames(texts: readonly string[]): string[][] {
    const files = texts.map((_, i) => `/fou-provider-module-${i}.js`);
    const options: ts.CompilerOptions = {
        allowJs: true,
        checkJs: true,
        noEmit: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.CommonJS,
        lib: ["lib.es2022.d.ts"],
        types: ["node"],
        typeRoots: [path.join(__dirname, "..", "..", "node_modules", "@types")],
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    host.getSourceFile = (name, language, ...rest) => {
        const i = files.indexOf(name);
        return i >= 0 ? ts.createSourceFile(name, texts[i], language) : getSourceFile(name, language, ...rest);
    };
    host.fileExists = (name) => files.includes(name) || fileExists(name);
    const program = ts.createProgram(files, options, host);
    // 2304: Cannot find name 'x'; 2552: the same, with a guess.
    return files.map((f) =>
        program
            .getSemanticDiagnostics(program.getSourceFile(f))
            .filter((d) => d.code === 2304 || d.code === 2552)
            .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")),
    );
}

test("the drift probe's and the local providers' texts name nothing their module does not declare", () => {
    const dropped = PROBE_PROVIDER_MODULE.replace(/\nfunction sleep\([^]*?\n\}\n/, "\n");
    assert.notEqual(dropped, PROBE_PROVIDER_MODULE);
    const [probe, network, vm, broken] = unresolvedNames([PROBE_PROVIDER_MODULE, NETWORK_PROVIDER_MODULE, VM_PROVIDER_MODULE, dropped]);
    assert.deepEqual({ probe, network, vm }, { probe: [], network: [], vm: [] });
    assert.ok(broken.length > 0 && broken.every((m) => m.startsWith("Cannot find name 'sleep'")), broken.join("\n"));
});
