import { checkPrivateKey } from "../lib/ssh";

/**
 * Settings of the `ssh` hosts (machines that exist already, hosts/ssh.ts), as config.ts reads
 * them: each host's login and addresses from the topology file, the key or agent from the stack
 * (`fou-tunnel:sshPrivateKey`, a secret; `fou-tunnel:sshAgentSocket`).
 */

/** One login: the host's, or its jump host's. */
export interface SshLoginSettings {
    readonly address: string;
    readonly port: number;
    readonly user: string;
    /** Pinned, `<type> <base64>`. */
    readonly hostKey: string;
}

export interface SshHostSettings extends SshLoginSettings {
    /** The topology's host name. */
    readonly name: string;
    readonly sudo: boolean;
    readonly proxy?: SshLoginSettings;
    /** The tunnel's address on the host (underlayAddress, else the SSH address). */
    readonly underlayAddress: string;
    /** Unset: the host reports the device holding the underlay address. */
    readonly device?: string;
}

export interface SshSettings {
    readonly hosts: SshHostSettings[];
    /** The stack's private key (a secret config value; plain here, made secret again by index.ts). */
    readonly privateKey?: string;
    /** An SSH agent's socket on the machine running pulumi. */
    readonly agentSocketPath?: string;
}

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
 * in `SSH_AUTH_SOCK` must be there: otherwise nothing could log in.
 */
export function parseSshLogin(
    get: (key: string) => unknown,
    ns: string,
    env: SshEnvironment,
    problems: (string | undefined)[],
): Pick<SshSettings, "privateKey" | "agentSocketPath"> {
    const key = (k: string) => `${ns}:${k}`;
    const privateKey = get("sshPrivateKey");
    const agent = get("sshAgentSocket");
    if (privateKey !== undefined) {
        problems.push(checkPrivateKey(key("sshPrivateKey"), privateKey));
        if (env.isSecret?.(key("sshPrivateKey")) === false) {
            problems.push(
                `${key("sshPrivateKey")} is stored in plain text in the stack's config file: set it as a secret, \`pulumi config set --secret sshPrivateKey < KEYFILE\``,
            );
        }
    }
    if (agent !== undefined) {
        if (typeof agent !== "string" || !agent.startsWith("/")) {
            problems.push(`${key("sshAgentSocket")} must be the absolute path of an SSH agent's socket, like $SSH_AUTH_SOCK (got ${JSON.stringify(agent)})`);
        } else if (env.isSocket && !env.isSocket(agent)) {
            problems.push(`${key("sshAgentSocket")}: there is no socket at ${agent}; start an agent (\`eval "$(ssh-agent)"; ssh-add KEYFILE\`) and set its $SSH_AUTH_SOCK`);
        }
    }
    if (privateKey === undefined && agent === undefined && !env.sshAuthSock) {
        problems.push(
            `no way to log in to the hosts: set ${key("sshPrivateKey")} (\`pulumi config set --secret sshPrivateKey < KEYFILE\`) or ${key("sshAgentSocket")}, or run pulumi with an SSH agent (SSH_AUTH_SOCK)`,
        );
    }
    return {
        ...(typeof privateKey === "string" ? { privateKey } : {}),
        ...(typeof agent === "string" ? { agentSocketPath: agent } : {}),
    };
}
