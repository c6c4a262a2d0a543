/**
 * fou-tunnel: the FOU guide's IPIP-over-UDP tunnel between two hosts, declared — or any topology
 * of hosts and tunnels read from a YAML file (`fou-tunnel:topology`).
 *
 * `pulumi up` on the default (local) stack boots new-kernel VMs on this machine and builds the
 * tunnels between them; `pulumi destroy` undoes every step on the VMs, then removes them.
 */
import * as pulumi from "@pulumi/pulumi";
import { farEndSetups } from "./components/farEnd";
import { FouTopology } from "./components/fouTopology";
import { loadSettings } from "./config";
import { fleetFor } from "./hosts/fleet";
import { skipUnreadStackTraces } from "./lib/stackTraces";

// The SDK's per-promise stacks, which nothing reads, cost a mesh preview a third of its CPU.
skipUnreadStackTraces();

const settings = loadSettings(new pulumi.Config());
const topo = settings.topology;
// The machines of the stack's kind (local VMs, EC2 instances or the user's own), alike from here on.
const fleet = fleetFor(settings, `${pulumi.getProject()}/${pulumi.getStack()}`);

const tunnels = settings.tunnel ? new FouTopology("fou", { topology: topo, hosts: fleet.hosts, check: settings.check }) : undefined;

/** Per tunnel, per host: one value of each end. */
function perEnd<T>(pick: (e: { host: string; ifname: string; gwip: string }) => T): Record<string, Record<string, T>> {
    return Object.fromEntries(
        topo.tunnels.map((t) => [t.name, Object.fromEntries(t.ends.map((e) => [e.host, pick(e)]))]),
    );
}

/** Where the hosts and tunnels came from. */
export const topology = topo.source;
/** Host name → underlay address. */
export const underlay = fleet.outputs.underlay;
/** Host name → public address (aws stacks). */
export const publicIps = fleet.outputs.publicIps;
/** How to log in to each host, with the key from `sshPrivateKey` saved to the file named. */
export const sshCommands = fleet.outputs.sshCommands;
/** Tunnel → host → GWIP (`k1-k2`: 10.10.10.1 on k1, 10.10.10.2 on k2 by default). */
export const gwips = tunnels ? perEnd((e) => e.gwip) : {};
/** Tunnel → host → tunnel interface (`ftok2` on k1, `ftok1` on k2). */
export const interfaces = tunnels ? perEnd((e) => e.ifname) : {};
/** Tunnel → host → MTU, as the kernel set it (or as configured). */
export const mtu = tunnels
    ? pulumi
          .all(Object.entries(tunnels.info).flatMap(([name, t]) => t.ends.map((e) => e.mtu.apply((m) => [name, e.host, m] as const))))
          .apply((rows) => {
              const out: Record<string, Record<string, number>> = {};
              for (const [name, host, m] of rows) (out[name] ??= {})[host] = m;
              return out;
          })
    : {};
/** Tunnel → protocol, encapsulation, port and options, as built. */
export const tunnelSpecs = tunnels
    ? Object.fromEntries(
          topo.tunnels.map((t) => [
              t.name,
              { hosts: t.ends.map((e) => e.host), protocol: t.protocol, encap: t.encap, port: t.port, sport: t.sport, csum: t.csum, persist: t.persist, routes: Object.fromEntries(t.ends.map((e) => [e.host, e.routes])) },
          ]),
      )
    : {};
/** Receive ports per host, with the tunnels sharing each. */
export const ports = tunnels ? topo.ports : [];
/** The guide's test from each end of each tunnel: pings through it and UDP packets seen on the port. */
export const verification = tunnels?.checks ?? [];
/** Host name → kernel release before and after its upgrade (hosts with `kernel: {upgrade: true}`). */
export const kernels = tunnels?.kernels ?? {};
/**
 * External host → what its operator runs for its tunnels: `commands` (the ip lines) or the
 * systemd-networkd files of `networkd` (path → content). From the topology alone: `pulumi
 * preview` shows it before anything is built (docs/topology.md, "External hosts").
 */
export const externalEnds = farEndSetups(topo, Object.fromEntries(topo.hosts.map((h) => [h.name, h.underlayAddress ?? h.address])));
/** The VMs as vm.sh reported them (pid, boot time). */
export const vms = fleet.outputs.vms;
/** SSH key for the hosts (secret): `pulumi stack output sshPrivateKey --show-secrets`; none on ssh stacks, whose key is the user's own. */
export const sshPrivateKey = fleet.outputs.sshPrivateKey;
