import type { KernelSpec } from "../components/topologySpec";
import { checkInt } from "../lib/validate";
import { DEFAULT_REBOOT_TIMEOUT, MAX_REBOOT_TIMEOUT, MIN_REBOOT_TIMEOUT } from "../lib/vocabulary";
import { KERNEL_KEYS, checkKeys, readBool } from "./schema";
import { Report, YMap, got, str } from "./yaml";

/**
 * A host's `kernel:` block (ssh hosts only): upgrade (default false: nothing reboots unless it
 * is set), package, repository (an apt source line), key (its ASCII-armored public key),
 * rebootTimeout (seconds, 60 to 3600, default 600). Every problem reported at its node.
 */

export const KERNEL_EXAMPLE = "{upgrade: true}";
const PACKAGE = /^[a-z0-9][a-z0-9.+-]*$/;
/** `deb [options] http(s)://host/path suite [components…]`. */
const APT_LINE = /^deb\s+(\[[^\]]*\]\s+)?https?:\/\/[^\s[\]]+\s+\S+(\s+\S+)*$/;
const ARMOR = /^-----BEGIN PGP PUBLIC KEY BLOCK-----\n[\s\S]*\n-----END PGP PUBLIC KEY BLOCK-----$/;
/** A public key block is a few KiB; a mirror's key with many signatures stays far below this. */
const MAX_KEY = 64 * 1024;

/** Why `kernel` is refused on local and aws hosts. */
export const KERNEL_NOT_HERE = {
    local: "only for ssh hosts (fou-tunnel:hosts: ssh): local VMs get their kernel from the VM image, which the stack boots; there is nothing to upgrade",
    aws: "only for ssh hosts (fou-tunnel:hosts: ssh): EC2 instances get their kernel from the AMI the stack launches; there is nothing to upgrade",
} as const;

/** The block as written, or undefined when absent or invalid (reported). */
export function readKernel(r: Report, item: YMap, path: string): KernelSpec | undefined {
    const e = item.entries.get("kernel");
    if (!e) {
        return undefined;
    }
    const at = `${path}.kernel`;
    if (e.value.kind !== "map") {
        r.add(e.value.pos, at, `must be a mapping like ${KERNEL_EXAMPLE} (got ${got(e.value)})`);
        return undefined;
    }
    const m = e.value;
    const before = r.count;
    checkKeys(r, m, at, "kernel", KERNEL_KEYS);
    let upgrade = false;
    const u = m.entries.get("upgrade");
    if (u) {
        const b = readBool(u.value);
        if ("error" in b) r.add(u.value.pos, `${at}.upgrade`, b.error);
        else upgrade = b.value;
    }
    const text = (key: string, rule: (v: string) => string | undefined): string | undefined => {
        const x = m.entries.get(key);
        if (!x) return undefined;
        const v = str(x.value);
        const why = v === undefined ? `must be a string (got ${got(x.value)})` : rule(v);
        if (why) {
            r.add(x.value.pos, `${at}.${key}`, why);
            return undefined;
        }
        return v;
    };
    const pkg = text("package", (v) =>
        PACKAGE.test(v) && v.length <= 128 ? undefined : `must be a package name like linux-image-6.12-amd64 or kernel-ml: a-z, 0-9, '.', '+', '-', starting with a letter or digit (got ${JSON.stringify(v)})`,
    );
    const repository = text("repository", (v) => {
        if (/[\x00-\x1f\x7f]/.test(v)) {
            return `must be one line without control characters: an apt source line like "deb [signed-by=/etc/apt/keyrings/fou-tunnel-kernel.gpg] http://198.51.100.1:8080/ bookworm main" (got ${JSON.stringify(v.slice(0, 80))})`;
        }
        if (v.length > 1024 || !APT_LINE.test(v.trim())) {
            return `must be an apt source line with an http(s) URL, like "deb http://198.51.100.1:8080/ bookworm main" (got ${JSON.stringify(v.slice(0, 80))})`;
        }
        return undefined;
    });
    const key = text("key", (v) => {
        const t = v.trim();
        if (t.length > MAX_KEY) return `is ${t.length} characters; a public key block has at most ${MAX_KEY}`;
        if (!ARMOR.test(t) || /[^\x20-\x7e\n]/.test(t)) {
            return "must be an ASCII-armored PGP public key block, from -----BEGIN PGP PUBLIC KEY BLOCK----- to -----END PGP PUBLIC KEY BLOCK----- (gpg --armor --export KEYID), written with key: |";
        }
        return undefined;
    });
    if (key !== undefined && !m.entries.has("repository")) {
        r.add(m.entries.get("key")!.value.pos, `${at}.key`, "is the key of kernel.repository, which is not set: give the repository line too, or remove key");
    }
    let rebootTimeout = DEFAULT_REBOOT_TIMEOUT;
    const t = m.entries.get("rebootTimeout");
    if (t) {
        const v = t.value.kind === "scalar" ? t.value.value : got(t.value);
        if (checkInt(`${at}.rebootTimeout`, v, MIN_REBOOT_TIMEOUT, MAX_REBOOT_TIMEOUT)) {
            r.add(t.value.pos, `${at}.rebootTimeout`, `must be a whole number of seconds from ${MIN_REBOOT_TIMEOUT} to ${MAX_REBOOT_TIMEOUT}: how long to wait for SSH after the reboot (got ${JSON.stringify(v)})`);
        } else {
            rebootTimeout = v as number;
        }
    }
    if (r.count > before) {
        return undefined;
    }
    return {
        upgrade,
        ...(pkg !== undefined ? { package: pkg } : {}),
        ...(repository !== undefined ? { repository: repository.trim() } : {}),
        ...(key !== undefined ? { key: key.trim() + "\n" } : {}),
        rebootTimeout,
    };
}
