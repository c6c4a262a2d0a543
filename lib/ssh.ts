import { utils } from "ssh2";
import { parseIp } from "./inet";

/**
 * Checks of SSH login settings (addresses, ports, users, host keys, private keys), shared by the
 * topology parser and the SshHost component. Each check returns a message naming its key, or
 * undefined when the value is valid; no message ever contains a private key.
 */

/** Host key types a server offers (`ssh-keyscan -t …`); user-only key types (sk-…) are not host keys. */
export const HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"] as const;

/** Where a login goes, for messages and the `ssh-keyscan` hint. */
export interface SshEndpoint {
    readonly address: string;
    readonly port?: number;
    /** The jump host the address is reached from, when there is one. */
    readonly proxy?: { readonly address: string; readonly port?: number; readonly user?: string };
}

/** An SSH address: an IPv4 or IPv6 address, or a DNS name (RFC 1123 labels, at most 253 characters). */
export function checkSshAddress(key: string, value: unknown): string | undefined {
    if (typeof value !== "string" || value === "") {
        return `${key} must be the host's address or DNS name, like 198.51.100.151 (got ${JSON.stringify(value)})`;
    }
    if (parseIp(value)) {
        return undefined;
    }
    const labels = value.replace(/\.$/, "").split(".");
    const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
    // A last label of digits only is a mistyped IPv4 address (198.51.100.256), not a name.
    if (value.length > 253 || !labels.every((l) => label.test(l)) || /^\d+$/.test(labels[labels.length - 1])) {
        return `${key} must be an IP address or a DNS name like host.example.com (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/** An SSH port. */
export function checkSshPort(key: string, value: unknown): string | undefined {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
        return `${key} must be a TCP port number from 1 to 65535 (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/** A login name: what useradd accepts by default, at most 32 characters. */
export function checkSshUser(key: string, value: unknown): string | undefined {
    if (typeof value !== "string" || !/^[A-Za-z_][A-Za-z0-9._-]{0,31}$/.test(value)) {
        return `${key} must be a user name of 1-32 letters, digits, '.', '_' and '-', not starting with a digit, '.' or '-' (got ${JSON.stringify(value)})`;
    }
    return undefined;
}

/** `ssh-keyscan -t ed25519 [-p PORT] ADDRESS`, run from the jump host when there is one. */
export function keyscanCommand(e: SshEndpoint): string {
    const scan = `ssh-keyscan -t ed25519${e.port !== undefined && e.port !== 22 ? ` -p ${e.port}` : ""} ${e.address}`;
    if (!e.proxy) {
        return scan;
    }
    const p = e.proxy;
    return `ssh${p.port !== undefined && p.port !== 22 ? ` -p ${p.port}` : ""} ${p.user ? `${p.user}@` : ""}${p.address} ${scan}`;
}

/** How to get the key to pin, for the message of a missing or wrong hostKey. */
export function hostKeyHint(e: SshEndpoint): string {
    return (
        `get it with \`${keyscanCommand(e)}\` and compare its fingerprint (\`ssh-keygen -lf -\`) with the one the host shows ` +
        "on its console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)"
    );
}

/**
 * The host key to pin, as the command plugin takes it (`ssh-ed25519 AAAA…`), from an
 * authorized_keys-style line (a comment may follow) or a line of `ssh-keyscan` output (the
 * address first). Undefined when it is neither; {@link checkHostKey} says why.
 */
export function normalizeHostKey(value: unknown): string | undefined {
    if (typeof value !== "string") {
        return undefined;
    }
    const lines = value.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    if (lines.length !== 1) {
        return undefined;
    }
    const fields = lines[0].split(/\s+/);
    const at = (HOST_KEY_TYPES as readonly string[]).includes(fields[0]) ? 0 : (HOST_KEY_TYPES as readonly string[]).includes(fields[1]) ? 1 : -1;
    if (at < 0 || fields.length < at + 2) {
        return undefined;
    }
    const line = `${fields[at]} ${fields[at + 1]}`;
    const parsed = utils.parseKey(line);
    if (parsed instanceof Error || Array.isArray(parsed) || parsed.isPrivateKey() || parsed.type !== fields[at]) {
        return undefined;
    }
    return line;
}

/** A host key given to pin (a missing one is the login model's to report); `e` names the host in the hint of how to get one. */
export function checkHostKey(key: string, value: unknown, e: SshEndpoint): string | undefined {
    if (normalizeHostKey(value) !== undefined) {
        return undefined;
    }
    const text = typeof value === "string" ? value : "";
    const lines = text.split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    const why =
        typeof value !== "string"
            ? `must be a public key line like "ssh-ed25519 AAAA…" (got ${typeof value === "object" ? "a collection" : JSON.stringify(value)})`
            : /PRIVATE KEY/.test(text)
              ? "is a private key; pin the host's public key (never give a host's private key to the stack)"
              : lines.length > 1
                ? `has ${lines.length} lines; give one key, like the ed25519 line of ssh-keyscan`
                : !HOST_KEY_TYPES.some((t) => text.split(/\s+/).includes(t))
                  ? `must start with a host key type (${HOST_KEY_TYPES.join(", ")}), like "ssh-ed25519 AAAA…" (got ${JSON.stringify(shorten(text))})`
                  : `is not a valid ${text.split(/\s+/).find((t) => (HOST_KEY_TYPES as readonly string[]).includes(t))} public key (the base64 part is damaged or of another type; got ${JSON.stringify(shorten(text))})`;
    return `${key} ${why}; ${hostKeyHint(e)}`;
}

/**
 * A private key the command plugin can read: OpenSSH or PEM, unencrypted (the plugin would need
 * its passphrase as another secret; an agent holds an encrypted key better).
 */
export function checkPrivateKey(key: string, value: unknown): string | undefined {
    if (typeof value !== "string" || value.trim() === "") {
        return `${key} must be the text of an SSH private key file (got ${value === undefined ? "nothing" : typeof value})`;
    }
    if (/^PuTTY-User-Key-File/.test(value.trimStart())) {
        return `${key} is a PuTTY key; convert it with \`puttygen KEY.ppk -O private-openssh -o KEY\``;
    }
    const parsed = utils.parseKey(value);
    if (parsed instanceof Error) {
        return /encrypted/i.test(parsed.message)
            ? `${key} is encrypted with a passphrase: load it into an SSH agent (\`ssh-add KEY\`) and leave ${key} unset, or set a key without one`
            : `${key} is not an SSH private key (OpenSSH or PEM): ${parsed.message}`;
    }
    const k = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!k.isPrivateKey()) {
        return `${key} is a public key; set the private key (the file without .pub)`;
    }
    return undefined;
}

function shorten(s: string): string {
    return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
