import * as pulumi from "@pulumi/pulumi";
import { TunnelHost } from "../components/host";
import { SshHost } from "../components/sshHost";
import { FleetFactory, byName } from "./fleet";
import { SshHostSettings, SshSettings } from "./sshConfig";

export interface SshHostsArgs {
    /** The machines, each with its whole login (the stack's key, agent and dials included). */
    readonly settings: SshSettings;
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
        const { hosts } = args.settings;
        // The settings are the component's arguments as they are: one login model for both.
        this.machines = hosts.map((h) => new SshHost(`${name}-${h.name}`, h, { parent: this }));
        this.hosts = this.machines.map((m) => m.host);
        this.underlay = Object.fromEntries(hosts.map((h) => [h.name, h.underlayAddress]));
        this.sshCommands = Object.fromEntries(hosts.map((h) => [h.name, sshCommand(h)]));
        this.registerOutputs({});
    }
}

/** `ssh [-p PORT] [-J user@jump:port] user@address`. */
export function sshCommand(h: SshHostSettings): string {
    const jump = h.proxy ? ` -J ${h.proxy.user}@${h.proxy.address.includes(":") ? `[${h.proxy.address}]` : h.proxy.address}${h.proxy.port === 22 ? "" : `:${h.proxy.port}`}` : "";
    return `ssh${h.port === 22 ? "" : ` -p ${h.port}`}${jump} ${h.user}@${h.address}`;
}

/** The ssh fleet: machines that exist already, each reached with its login; the key is the user's own, not exported. */
export const sshFleet: FleetFactory = (s) => {
    if (!s.ssh) {
        throw new Error("fleet: an ssh stack without ssh settings");
    }
    const ssh = new SshHosts("ssh", { settings: s.ssh });
    return { hosts: byName(ssh.hosts), outputs: { underlay: ssh.underlay, publicIps: {}, sshCommands: ssh.sshCommands, vms: [] } };
};
