/**
 * Topology files: which hosts exist and which FOU/GUE tunnels join them (docs/topology.md).
 * Pure: parses and validates the YAML and derives what the components need (GWIPs allocated
 * from pools, interface names, the receive ports each host opens); declares no resources.
 *
 *   yaml.ts      the YAML tree with positions; file:line:col messages (Report)
 *   schema.ts    keys and per-field parsing; hosts.ts and tunnels.ts read the two lists
 *                (sshHosts.ts an ssh host's login, localUnderlay.ts a local VM's IPv6 underlay,
 *                tunnelHosts.ts a tunnel's two hosts and the family of its underlay)
 *   checks.ts    whole-file checks: unique names, pairs, interfaces, GWIPs, routes, sports
 *   gwips.ts     GWIP pools and allocation
 *   external.ts  far ends the stack does not manage (`external:` hosts)
 *   ports.ts     the receive ports each host opens, shared by the tunnels of one binding
 *   build.ts     the records become the model (model.ts); guide.ts builds the guide's directly
 *   parse.ts     parseTopology, loadTopology: the steps in order
 *   defaults.ts  every built-in value (port, pools, the 198.51.100.0/24 bridge and its hosts)
 */
export { loadTopology, parseTopology } from "./parse";
export { guideTopology } from "./guide";
export type { GuideTopologyArgs } from "./guide";
export type { Encap, ExternalHostSpec, PortSpec, Topology, TopologyHost, TopologyOptions, TunnelEndSpec, TunnelProtocol, TunnelSpec } from "./model";
export {
    DEFAULT_GWIP_POOL,
    DEFAULT_GWIP_POOL6,
    DEFAULT_PORT,
    DEFAULT_UNDERLAY,
    GUIDE_GWIPS,
    GUIDE_HOSTS,
    defaultHostAddress,
    defaultUnderlay,
} from "./defaults";
