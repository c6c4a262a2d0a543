/**
 * fou-tunnel's components as a library: `import { FouTunnel, HostPrep } from "fou-tunnel"`.
 * Importing declares nothing and reads no configuration; resources exist only once a caller
 * constructs a component. Topology files (`loadTopology`, `guideTopology`) are in
 * `fou-tunnel/topology`.
 */
export * from "./bootUnit";
export * from "./driftProbe";
export * from "./farEnd";
export * from "./firewall";
export * from "./fouPort";
export * from "./fouTopology";
export * from "./fouTunnel";
export * from "./gwip";
export * from "./host";
export * from "./hostPrep";
export * from "./ipipFouLink";
export * from "./kernelUpgrade";
export * from "./linkCommand";
export * from "./route";
export * from "./shell";
export * from "./sshHost";
export * from "./tunnelCheck";
export * from "../lib/vocabulary";
export type { HostObject } from "./hostState";
export type { ExternalHostSpec, HostSpec, KernelSpec, PortSpec, TopologySpec, TunnelEndSpec, TunnelSpec } from "./topologySpec";
export { FouInputError } from "../lib/validate";
