/**
 * skipUnreadStackTraces: the program captures no stack traces unless the user set a limit
 * (`--stack-trace-limit` on node's command line or in NODE_OPTIONS), and the SDK still takes each
 * resource's call sites, the position the engine is told.
 */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { skipUnreadStackTraces } from "../../lib/stackTraces";

const before = Error.stackTraceLimit;
afterEach(() => {
    Error.stackTraceLimit = before;
});

test("no limit chosen: stacks are empty, messages stay", () => {
    Error.stackTraceLimit = 10;
    assert.equal(skipUnreadStackTraces([], ""), true);
    assert.equal(Error.stackTraceLimit, 0);
    const e = new Error("bad value");
    assert.equal(e.message, "bad value");
    assert.equal(e.stack, "Error: bad value");
});

test("a limit the user chose is kept, in either place and either spelling", () => {
    for (const [argv, opts] of [
        [["--stack-trace-limit=20"], ""],
        [[], "--max-old-space-size=4096 --stack-trace-limit=20"],
        [[], "--stack_trace_limit=5"],
    ] as [string[], string][]) {
        Error.stackTraceLimit = 7;
        assert.equal(skipUnreadStackTraces(argv, opts), false, `${argv} ${opts}`);
        assert.equal(Error.stackTraceLimit, 7);
    }
});

test("the SDK's call sites of a resource are taken whatever the limit", () => {
    Error.stackTraceLimit = 0;
    // Resource.callsites (private) is where the SDK reads the source position it registers.
    const sites = (pulumi.Resource as unknown as { callsites(): { file?: string }[] }).callsites();
    assert.ok(sites.some((s) => s.file?.endsWith("stackTraces.test.ts")), JSON.stringify(sites.slice(0, 5)));
    assert.equal(Error.stackTraceLimit, 0);
});
