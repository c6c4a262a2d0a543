/**
 * The host-side shell scripts under vm/ (entry scripts and the files they source) pass
 * `shellcheck -x`, run from the repository root as their `# shellcheck source=vm/…` paths expect.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";

const REPO = path.resolve(__dirname, "../..");

function vmScripts(): string[] {
    const r = spawnSync("git", ["ls-files", "vm/*.sh", "vm/**/*.sh"], { cwd: REPO, encoding: "utf8" });
    assert.equal(r.status, 0, `git ls-files: ${r.stderr}`);
    return [...new Set(r.stdout.split("\n").filter((l) => l !== ""))].sort();
}

test("every vm/ shell script passes shellcheck -x", () => {
    const files = vmScripts();
    for (const f of ["vm/vm.sh", "vm/net.sh", "vm/lib.sh", "vm/build-image.sh", "vm/disk/disk-vm.sh"]) {
        assert.ok(files.includes(f), `${f} is listed`);
    }
    const r = spawnSync("shellcheck", ["-x", "-f", "gcc", ...files], { cwd: REPO, encoding: "utf8" });
    assert.equal(r.error, undefined, "shellcheck is installed (scripts/test.sh installs it)");
    assert.equal(r.stdout + r.stderr, "", `shellcheck found:\n${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0);
});
