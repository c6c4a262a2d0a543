import * as pulumi from "@pulumi/pulumi";
import { TunnelHost, withConnection } from "../components/host";
import type { TopologySpec } from "../components/topologySpec";
import type { AwsSettings } from "./awsConfig";
import type { LocalSettings } from "./localConfig";
import type { SshSettings } from "./sshConfig";

/**
 * The machines a stack builds its tunnels on, whatever their kind: local VMs, EC2 instances or
 * machines that exist already. The program asks for a fleet once ({@link fleetFor}) and treats
 * every kind alike from there: the tunnels take its hosts, the stack exports its outputs.
 */
export interface HostFleet {
    /** Host name → the host, in the topology's order. */
    readonly hosts: Record<string, TunnelHost>;
    readonly outputs: FleetOutputs;
}

/** What a stack exports about its machines; each kind fills what it has and leaves the rest empty. */
export interface FleetOutputs {
    /** Host name → underlay address. */
    readonly underlay: pulumi.Input<Record<string, string>>;
    /** Host name → public address (EC2 only). */
    readonly publicIps: pulumi.Input<Record<string, string>>;
    /** Host name → how to log in by hand. */
    readonly sshCommands: pulumi.Input<Record<string, string>>;
    /** Each VM as it booted (local VMs only). */
    readonly vms: pulumi.Input<unknown[]>;
    /** The key the stack made for its machines (secret); unset where the key is the user's own. */
    readonly sshPrivateKey?: pulumi.Output<string>;
}

/** What the fleets are made from: the stack settings' kind, its per-kind settings and the topology. */
export interface FleetSettings {
    readonly hosts: "local" | "aws" | "ssh";
    readonly local: LocalSettings;
    readonly aws?: AwsSettings;
    readonly ssh?: SshSettings;
    readonly topology: TopologySpec;
    /** Seconds per SSH dial, for every host of the fleet (`fou-tunnel:sshDialTimeout`). */
    readonly sshDialTimeout?: number;
    /** Hosts whose objects are forgotten, not undone, when removed: they are unreachable. */
    readonly forgetHosts: readonly string[];
}

/** The part of a fleet each kind makes. */
export type FleetFactory = (s: FleetSettings, stackId: string) => HostFleet;

// Each kind's module is loaded only for a stack of that kind: @pulumi/aws alone takes ~0.3 s.
const FACTORIES: Record<FleetSettings["hosts"], () => FleetFactory> = {
    local: () => (require("./local") as typeof import("./local")).localFleet,
    aws: () => (require("./aws") as typeof import("./aws")).awsFleet,
    ssh: () => (require("./ssh") as typeof import("./ssh")).sshFleet,
};

/**
 * The fleet of the stack's kind, with the stack's own say over every host: the dial timeout,
 * and retainOnDelete for the hosts to forget (an explicit opt-in, never a default).
 */
export function fleetFor(s: FleetSettings, stackId: string): HostFleet {
    const fleet = FACTORIES[s.hosts]()(s, stackId);
    const adjust = (h: TunnelHost): TunnelHost => {
        const dialed = s.sshDialTimeout === undefined ? h : withConnection(h, { perDialTimeout: s.sshDialTimeout });
        return s.forgetHosts.includes(h.name) ? { ...dialed, retainOnDelete: true } : dialed;
    };
    return { ...fleet, hosts: Object.fromEntries(Object.entries(fleet.hosts).map(([name, h]) => [name, adjust(h)])) };
}

/** Host name → host, in the order given. */
export function byName(hosts: readonly TunnelHost[]): Record<string, TunnelHost> {
    return Object.fromEntries(hosts.map((h) => [h.name, h]));
}
