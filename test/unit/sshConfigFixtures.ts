/**
 * What the tests of `fou-tunnel:hosts: ssh` share: the stack's keys, topology files written to a
 * temporary directory, two ssh hosts that log in correctly, the settings parsed from a config, and
 * the check that a config is rejected with the expected messages.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parseSettings } from "../../config";
import { SshEnvironment } from "../../hosts/sshConfig";
import { FouInputError } from "../../lib/validate";
import { ed25519Pair, K1_KEY, K2_KEY } from "./sshFixtures";

const dir = mkdtempSync(path.join(tmpdir(), "fou-sshcfg-"));
after(() => rmSync(dir, { recursive: true, force: true }));

export const PRIVATE = ed25519Pair().private;
export const ENCRYPTED = ed25519Pair("pw").private;
export const PUBLIC = ed25519Pair().public;

/** A secret key, as `pulumi config set --secret` leaves it. */
export const ENV: SshEnvironment = { isSecret: () => true, isSocket: (p) => p === "/run/agent.sock" };

/** A host's settings without its key (an Output, compared on its own). */
export function withoutKey<T extends { privateKey?: unknown }>(h: T): Omit<T, "privateKey"> {
    const { privateKey: _, ...rest } = h;
    return rest;
}

export function resolved<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

let files = 0;
export function topo(text: string): string {
    const file = path.join(dir, `t${files++}.yaml`);
    writeFileSync(file, text);
    return file;
}

export const TWO = (k1: string, k2: string, tunnels = "tunnels:\n  - hosts: [k1, k2]\n") => `hosts:\n  - name: k1\n${k1}  - name: k2\n${k2}${tunnels}`;
export const GOOD_K1 = `    ssh: {address: 198.51.100.161, hostKey: ${K1_KEY} root@k1}\n`;
export const GOOD_K2 = `    ssh:\n      address: 198.51.100.162\n      user: deploy\n      hostKey: ${K2_KEY}\n`;

export function settings(cfg: Record<string, unknown>, env: SshEnvironment = ENV) {
    return parseSettings((k) => cfg[k], "fou-tunnel", env);
}

/** The config (with a topology file of `text`) is rejected; every expected message is among the problems. */
export function rejects(cfg: Record<string, unknown>, text: string | undefined, expected: (string | RegExp)[], env: SshEnvironment = ENV): string[] {
    const file = text === undefined ? undefined : topo(text);
    const full = { hosts: "ssh", sshPrivateKey: PRIVATE, ...(file ? { topology: file } : {}), ...cfg };
    let problems: string[] = [];
    assert.throws(
        () => settings(full, env),
        (e: unknown) => {
            assert.ok(e instanceof FouInputError, String(e));
            problems = e.problems.map((p) => (file ? p.split(file).join("t.yaml") : p));
            return true;
        },
    );
    for (const want of expected) {
        assert.ok(
            problems.some((p) => (typeof want === "string" ? p === want : want.test(p))),
            `expected ${want}\n in\n${problems.join("\n")}`,
        );
    }
    return problems;
}
