import assert from "node:assert/strict";
import { test } from "node:test";
import { userEnv } from "../bench/stack";
import { changedResources, fitLine, fmtSpread, pulumiSummary, spread, table } from "../bench/stats";

test("spread: median (mean of the middle two when even), min, max", () => {
    assert.equal(spread([]), undefined);
    assert.deepEqual(spread([3]), { n: 1, median: 3, min: 3, max: 3 });
    assert.deepEqual(spread([5, 1, 3]), { n: 3, median: 3, min: 1, max: 5 });
    assert.deepEqual(spread([4, 1, 3, 2]), { n: 4, median: 2.5, min: 1, max: 4 });
    assert.equal(fmtSpread(spread([17.24, 16.91, 17.8])), "17.2 (16.9–17.8)");
    assert.equal(fmtSpread(spread([2])), "2.0");
    assert.equal(fmtSpread(spread([7, 7]), 0), "7");
    assert.equal(fmtSpread(undefined), "–");
});

test("pulumiSummary reads the Resources block and the engine's duration", () => {
    const up = ["Previewing update (bench):", "", "Resources:", "    + 25 to create", "", "Updating (bench):", "", "Outputs:", "    gwips: {}", "", "Resources:", "    + 24 created", "    1 unchanged", "", "Duration: 19s", ""].join("\n");
    assert.deepEqual(pulumiSummary(up), { resources: "+ 24 created, 1 unchanged", duration: "19s" });
    assert.equal(changedResources(pulumiSummary(up).resources), true);
    const noop = ["Previewing update (bench):", "", "Resources:", "    25 unchanged", ""].join("\n");
    assert.deepEqual(pulumiSummary(noop), { resources: "25 unchanged" });
    assert.equal(changedResources("25 unchanged"), false);
    assert.equal(changedResources("~ 1 updated, 24 unchanged"), true);
    assert.equal(changedResources(undefined), true);
    assert.deepEqual(pulumiSummary("error: boom\n"), {});
});

test("fitLine: least squares; a vertical cloud has slope 0", () => {
    const f = fitLine([[1, 12], [3, 20], [6, 32]])!;
    assert.ok(Math.abs(f.a - 8) < 1e-9 && Math.abs(f.b - 4) < 1e-9, JSON.stringify(f));
    assert.deepEqual(fitLine([[2, 1], [2, 3]]), { a: 2, b: 0 });
    assert.equal(fitLine([]), undefined);
});

test("table aligns columns and drops empty ones", () => {
    assert.equal(table(["a", "bb", ""], [["xyz", "1", ""], ["q", "22"]]), ["a    bb", "---  --", "xyz   1", "q    22"].join("\n"));
});

test("userEnv keeps the user's environment, less TS_NODE_* and any backend or passphrase", () => {
    const { env, removed } = userEnv({
        PATH: "/usr/bin",
        HOME: "/root",
        TS_NODE_TRANSPILE_ONLY: "true",
        TS_NODE_FILES: "1",
        PULUMI_CONFIG_PASSPHRASE: "x",
        PULUMI_BACKEND_URL: "file:///tmp/x",
        FOU_CACHE: "/c",
    });
    assert.deepEqual(env, { PATH: "/usr/bin", HOME: "/root", FOU_CACHE: "/c" });
    assert.deepEqual(removed, ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "TS_NODE_FILES", "TS_NODE_TRANSPILE_ONLY"]);
});
