import { defaultIfname } from "../lib/vocabulary";
import { TUNNEL_DEFAULTS } from "./defaults";
import { Topology, TopologyHost, defaultTunnelName, tunnelSpec } from "./model";
import { portsOf } from "./ports";

export interface GuideTopologyArgs {
    /** A label for messages and the `topology` output. */
    readonly source: string;
    /** The guide's two hosts, a then b, validated (config.ts checks the stack's keys). */
    readonly hosts: readonly [TopologyHost, TopologyHost];
    /** The FOU port on both hosts. */
    readonly port: number;
    /** The GWIP of each host, canonical IPv4 addresses, validated. */
    readonly gwips: readonly [string, string];
    /** Close the FOU ports to strangers (default true). */
    readonly firewall?: boolean;
}

/**
 * The guide's topology, built directly from values the caller has checked (the stack's
 * `port`, `gwips` and `localVms`): one IPIP-over-FOU tunnel between the two hosts with every
 * other value built in, and the receive port it opens on each. The same model a topology file
 * with just these values gives.
 */
export function guideTopology(args: GuideTopologyArgs): Topology {
    const [a, b] = args.hosts;
    const tunnel = tunnelSpec(defaultTunnelName(a.name, b.name), { ...TUNNEL_DEFAULTS, port: args.port }, [
        { host: a.name, gwip: args.gwips[0], ifname: defaultIfname(b.name), routes: [] },
        { host: b.name, gwip: args.gwips[1], ifname: defaultIfname(a.name), routes: [] },
    ]);
    return { source: args.source, hosts: [a, b], externalHosts: [], tunnels: [tunnel], ports: portsOf([a.name, b.name], [tunnel]), firewall: args.firewall ?? true };
}
