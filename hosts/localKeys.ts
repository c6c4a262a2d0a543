/**
 * The SSH keys of the local VMs, made on this machine by `ssh-keygen` in local commands whose
 * output is secret: the stack's login key and one host key per VM, kept in the stack's state.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { sh } from "../components/shell";
import { LocalVmSettings } from "./localConfig";

/**
 * Prints a fresh ed25519 key pair: the private key file, then the public key line. Run by a
 * local command whose stdout is secret; the key lives in the stack's state from then on.
 */
export function keygenScript(comment: string): string {
    return [
        "set -eu; umask 077; d=$(mktemp -d)",
        sh`ssh-keygen -q -t ed25519 -N '' -C ${comment} -f "$d/id"`,
        'cat "$d/id" "$d/id.pub"; rm -rf "$d"',
    ].join("\n");
}

/** `ssh-ed25519 AAAA…` of a public key line (its comment dropped), as `hostKey` and known_hosts take it. */
export function publicKeyOnly(line: string): string {
    return line.trim().split(/\s+/).slice(0, 2).join(" ");
}

const KEY_END = "-----END OPENSSH PRIVATE KEY-----";

/** Splits what the key command prints (the private key file, then the public key line). */
export function splitKeyPair(text: string): { privateKey: string; publicKey: string } {
    const end = text.indexOf(KEY_END);
    if (end < 0) {
        throw new Error("the SSH key command printed no private key");
    }
    const cut = end + KEY_END.length;
    return { privateKey: text.slice(0, cut) + "\n", publicKey: text.slice(cut).trim() };
}

/** A key pair as the VMs and their connections take it. */
export interface LocalKeyPair {
    /** OpenSSH private key (secret). */
    readonly privateKey: pulumi.Output<string>;
    /** The public key line (not secret: it would hide every VM command and report). */
    readonly publicKey: pulumi.Output<string>;
}

/** The stack's login key, `<name>-ssh-key`, a child of `parent`; its public line keeps its comment. */
export function stackKey(parent: pulumi.Resource, name: string): LocalKeyPair {
    const key = new command.local.Command(
        `${name}-ssh-key`,
        { create: keygenScript("fou-tunnel"), logging: "none" },
        { parent, additionalSecretOutputs: ["stdout"] },
    );
    const keyText = key.stdout;
    return {
        privateKey: pulumi.secret(keyText.apply((t) => splitKeyPair(t).privateKey)),
        publicKey: pulumi.unsecret(keyText.apply((t) => splitKeyPair(t).publicKey)),
    };
}

/**
 * Each VM's host key, `<name>-<vm>-host-key`, children of `parent`; the public half is
 * `ssh-ed25519 AAAA…`. The keys outlive the VMs: one booted again (its qemu died, this machine
 * rebooted) has the same key, so the commands' stored connections still reach it.
 */
export function vmHostKeys(parent: pulumi.Resource, name: string, vms: readonly LocalVmSettings[]): LocalKeyPair[] {
    return vms.map((vm) => {
        const keyCommand = new command.local.Command(
            `${name}-${vm.name}-host-key`,
            { create: keygenScript(`root@${vm.name}`), logging: "none" },
            { parent, additionalSecretOutputs: ["stdout"] },
        );
        const pair = keyCommand.stdout.apply(splitKeyPair);
        return {
            publicKey: pulumi.unsecret(pair.apply((p) => publicKeyOnly(p.publicKey))),
            privateKey: pulumi.secret(pair.apply((p) => p.privateKey)),
        };
    });
}
