import * as pulumi from "@pulumi/pulumi";
import { FullSshLogin, SshLogin, checkAgentSocket } from "../lib/sshLogin";
import { checkPrivateKey } from "../lib/ssh";

/**
 * Settings of the `ssh` hosts (machines that exist already, hosts/ssh.ts), as config.ts reads
 * them: each host's login from the topology file, joined by the stack's key or agent
 * (`fou-tunnel:sshPrivateKey`, a secret; `fou-tunnel:sshAgentSocket`) and dial timeout.
 */

/** One machine: its login with every default filled in, and what the tunnel uses on it. */
export interface SshHostSettings extends FullSshLogin {
    /** The topology's host name. */
    readonly name: string;
    readonly sudo: boolean;
    /** The tunnel's address on the host (underlayAddress, else the SSH address). */
    readonly underlayAddress: string;
    /** Unset: the host reports the device holding the underlay address. */
    readonly device?: string;
}

export interface SshSettings {
    readonly hosts: SshHostSettings[];
}

/** The stack's own part of every login: its key (a secret Output) and its agent. */
export type SshCredentials = Pick<SshLogin, "privateKey" | "agentSocketPath">;

/** What the checks of the login keys need to know about the machine running pulumi. */
export interface SshEnvironment {
    /** Whether a config key holds a secret (`pulumi config set --secret`); undefined: not known. */
    readonly isSecret?: (key: string) => boolean | undefined;
    /** `SSH_AUTH_SOCK`, which the command plugin uses when no agent socket is given. */
    readonly sshAuthSock?: string;
    /** Whether a path is a socket (an agent's). */
    readonly isSocket?: (path: string) => boolean;
}

/**
 * The stack's key and agent for the hosts of an ssh stack (`sshPrivateKey`, a secret;
 * `sshAgentSocket`); problems go into `problems`, each naming its key. Without either, an agent
 * in `SSH_AUTH_SOCK` must be there: otherwise nothing could log in. The key leaves as a secret
 * Output, the only form in which the program holds it.
 */
export function parseSshCredentials(
    get: (key: string) => unknown,
    ns: string,
    env: SshEnvironment,
    problems: (string | undefined)[],
): SshCredentials {
    const key = (k: string) => `${ns}:${k}`;
    const rawKey = get("sshPrivateKey");
    const agent = get("sshAgentSocket");
    const privateKey = rawKey === undefined ? undefined : readPrivateKey(key("sshPrivateKey"), rawKey, problems);
    if (rawKey !== undefined && env.isSecret?.(key("sshPrivateKey")) === false) {
        problems.push(
            `${key("sshPrivateKey")} is stored in plain text in the stack's config file: set it as a secret, \`pulumi config set --secret sshPrivateKey < KEYFILE\``,
        );
    }
    if (agent !== undefined) {
        problems.push(checkAgentSocket(key("sshAgentSocket"), agent, env.isSocket));
    }
    if (rawKey === undefined && agent === undefined && !env.sshAuthSock) {
        problems.push(
            `no way to log in to the hosts: set ${key("sshPrivateKey")} (\`pulumi config set --secret sshPrivateKey < KEYFILE\`) or ${key("sshAgentSocket")}, or run pulumi with an SSH agent (SSH_AUTH_SOCK)`,
        );
    }
    return {
        ...(privateKey ? { privateKey } : {}),
        ...(typeof agent === "string" ? { agentSocketPath: agent } : {}),
    };
}

/**
 * A private key's text, checked, and held from here on only as a secret Output: what a config's
 * `getSecret` gives, made while the text is read, so that a bad key stops the program before
 * anything is declared (never in a message: the checks do not quote it). Undefined when invalid.
 */
export function readPrivateKey(key: string, value: unknown, problems: (string | undefined)[]): pulumi.Output<string> | undefined {
    const bad = checkPrivateKey(key, value);
    problems.push(bad);
    return bad === undefined ? pulumi.secret(value as string) : undefined;
}
