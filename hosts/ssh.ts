import * as pulumi from "@pulumi/pulumi";
import { TunnelHost } from "../components/host";
import { SshHost } from "../components/sshHost";
import { SshSettings } from "./sshConfig";

export interface SshHostsArgs {
    readonly settings: SshSettings;
    /** The private key, a secret (the settings hold it in plain text). */
    readonly privateKey?: pulumi.Input<string>;
    /** Seconds per SSH dial (`fou-tunnel:sshDialTimeout`); default SshHost's. */
    readonly perDialTimeout?: number;
}

/**
 * The machines of an ssh stack: one {@link SshHost} per host of the topology, all logging in with
 * the stack's key or agent. The stack owns none of them: destroy undoes what it did on each and
 * leaves the machine running.
 */
export class SshHosts extends pulumi.ComponentResource {
    public readonly hosts: TunnelHost[];
    public readonly machines: SshHost[];
    /** Host name → underlay address. */
    public readonly underlay: Record<string, string>;
    /** Host name → how to log in by hand (`ssh -J jump user@host`). */
    public readonly sshCommands: Record<string, string>;

    constructor(name: string, args: SshHostsArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("fou:ssh:SshHosts", name, {}, opts);
        const { settings } = args;
        const agent = settings.agentSocketPath === undefined ? {} : { agentSocketPath: settings.agentSocketPath };
        const key = args.privateKey === undefined ? {} : { privateKey: args.privateKey };
        this.machines = settings.hosts.map(
            (h) =>
                new SshHost(
                    `${name}-${h.name}`,
                    {
                        name: h.name,
                        address: h.address,
                        port: h.port,
                        user: h.user,
                        hostKey: h.hostKey,
                        sudo: h.sudo,
                        underlayAddress: h.underlayAddress,
                        ...(h.device === undefined ? {} : { device: h.device }),
                        ...(h.proxy ? { proxy: { ...h.proxy } } : {}),
                        ...key,
                        ...agent,
                        ...(args.perDialTimeout === undefined ? {} : { dials: { perDialTimeout: args.perDialTimeout } }),
                    },
                    { parent: this },
                ),
        );
        this.hosts = this.machines.map((m) => m.host);
        this.underlay = Object.fromEntries(settings.hosts.map((h) => [h.name, h.underlayAddress]));
        this.sshCommands = Object.fromEntries(settings.hosts.map((h) => [h.name, sshCommand(h)]));
        this.registerOutputs({});
    }
}

/** `ssh [-p PORT] [-J user@jump:port] user@address`. */
export function sshCommand(h: SshSettings["hosts"][number]): string {
    const jump = h.proxy ? ` -J ${h.proxy.user}@${h.proxy.address.includes(":") ? `[${h.proxy.address}]` : h.proxy.address}${h.proxy.port === 22 ? "" : `:${h.proxy.port}`}` : "";
    return `ssh${h.port === 22 ? "" : ` -p ${h.port}`}${jump} ${h.user}@${h.address}`;
}
