import * as pulumi from "@pulumi/pulumi";
import { Firewall } from "./firewall";
import { FouPort } from "./fouPort";
import { stateNamespace } from "./hostState";
import { AnyEndArgs, FouTunnel, TunnelEndInfo } from "./fouTunnel";
import { TunnelHost } from "./host";
import { HostPrep } from "./hostPrep";
import { KernelUpgrade } from "./kernelUpgrade";
import { TunnelCheckResult } from "./tunnelCheck";
import type { TopologySpec } from "./topologySpec";
import { planTopology, UpgradePlan } from "./topologyPlan";
import { throwIfInvalid } from "../lib/validate";

export interface FouTopologyArgs {
    /** Hosts, tunnels and ports, validated, every default filled in (topology/ makes one). */
    readonly topology: TopologySpec;
    /** The machines, by topology host name: one per host of `topology.hosts` (far ends have none). */
    readonly hosts: Record<string, TunnelHost>;
    /** Ping through every tunnel from both ends after it is built; default true. */
    readonly check?: boolean;
}

/** What a built tunnel looks like, for stack outputs. */
export interface TunnelInfo {
    readonly protocol: string;
    readonly encap: string;
    readonly port: number;
    readonly ends: TunnelEndInfo[];
}

/**
 * Every tunnel of a topology: each managed host prepared once (kernel check, the modules its tunnels
 * need, forwarding), one receive port per host and (port, binding) shared by the tunnels that
 * use it, then each tunnel mirrored on its two hosts. A shared port is a sibling of the tunnels,
 * not a child of one: destroying one tunnel (or deleting it from the file) leaves the port to the
 * others, and it goes only when no tunnel on the host uses it.
 *
 * A tunnel to a far end (`topology.externalHosts`) is built on its managed host only: the
 * port, link, GWIP and routes there, its firewall admitting the far end's address, its check
 * pinging the far end's GWIP. Nothing is declared for the far end itself.
 *
 * What each host gets is decided by `planTopology` (components/topologyPlan.ts), a function of
 * the topology alone; the constructor only declares the plan's resources.
 *
 * Every child is named `<name>-…` (`fou-k1-prep`, `fou-k1-fou-5555`, `fou-k1-k2`), so two
 * topologies in one program never collide.
 */
export class FouTopology extends pulumi.ComponentResource {
    public readonly tunnels: Record<string, FouTunnel>;
    public readonly ports: FouPort[];
    public readonly preps: Record<string, HostPrep>;
    /** Host name → its nftables rules (none with `firewall: false`). */
    public readonly firewalls: Record<string, Firewall>;
    /** Tunnel name → kind, port and both ends (GWIPs, interfaces, MTUs). */
    public readonly info: Record<string, TunnelInfo>;
    /** Host name → its kernel upgrade, for hosts whose topology entry says `kernel: {upgrade: true}`. */
    public readonly kernelUpgrades: Record<string, KernelUpgrade>;
    /** Host name → the kernel release before and after its upgrade (upgraded hosts only). */
    public readonly kernels: pulumi.Output<Record<string, { before: string; after: string }>>;
    /** Every end's ping/capture result. */
    public readonly checks: pulumi.Output<(TunnelCheckResult & { tunnel: string; host: string })[]>;

    constructor(name: string, args: FouTopologyArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const { topology } = args;
        throwIfInvalid(
            topology.hosts
                .filter((h) => args.hosts[h.name] === undefined)
                .map((h) => `FouTopology ${name}: no machine for host ${h.name} of ${topology.source}`),
        );
        super("fou:index:FouTopology", name, {}, opts);
        const child = { parent: this };
        const plan = planTopology(topology);
        const farAddress = new Map((topology.externalHosts ?? []).map((h) => [h.name, h.address]));

        const upgraded = declareUpgrades(name, plan.upgrades, args.hosts, child);
        const hosts = upgraded.hosts;
        this.kernelUpgrades = upgraded.upgrades;
        this.kernels = pulumi
            .all(Object.entries(this.kernelUpgrades).map(([n, u]) => pulumi.all([u.kernelBefore, u.kernelAfter]).apply(([before, after]) => [n, { before, after }] as const)))
            .apply((es) => Object.fromEntries(es));

        this.preps = {};
        for (const h of plan.hosts) {
            const upgrade = this.kernelUpgrades[h.host];
            this.preps[h.host] = new HostPrep(
                `${name}-${h.host}-prep`,
                { host: hosts[h.host], modules: h.modules, ipForward: h.ipForward },
                upgrade ? { ...child, dependsOn: [upgrade] } : child,
            );
        }

        this.firewalls = declareFirewalls(name, plan, hosts, farAddress, this.preps, child);

        // A port is the topology's, not a tunnel's: each end finds it by host and tunnel.
        const portOf = new Map<string, FouPort>();
        this.ports = plan.hosts.flatMap((h) =>
            h.ports.map((p) => {
                const after = p.preparedFirst.map((n) => this.preps[n].ready);
                const portArgs = { host: hosts[h.host], port: p.port, encap: p.encap, ipproto: p.ipproto, family: p.family, persist: p.persist, dependsOn: after };
                const port = new FouPort(`${name}-${h.host}-${p.encap}-${p.port}`, portArgs, child);
                p.tunnels.forEach((t) => portOf.set(endKey(h.host, t), port));
                return port;
            }),
        );

        this.tunnels = {};
        this.info = {};
        const checks: pulumi.Output<(TunnelCheckResult & { tunnel: string; host: string })[]>[] = [];
        for (const t of topology.tunnels) {
            const end = (i: 0 | 1): AnyEndArgs => {
                const e = t.ends[i];
                const far = farAddress.get(e.host);
                if (far !== undefined) {
                    return { far: { name: e.host, underlayAddress: far }, gwip: e.gwip, routes: e.routes };
                }
                const fouPort = portOf.get(endKey(e.host, t.name));
                return { host: hosts[e.host], gwip: e.gwip, ifname: e.ifname, routes: e.routes, prepared: this.preps[e.host].ready, fouPort };
            };
            // The check also proves the firewall lets the tunnel through.
            const checkAfter = t.ends.flatMap((e) => (this.firewalls[e.host] ? [this.firewalls[e.host].command] : []));
            const { port, protocol, encap, sport, csum, mtu, ttl, persist, underlay } = t;
            const tunnel = new FouTunnel(
                `${name}-${t.name}`,
                { a: end(0), b: end(1), port, protocol, encap, sport, csum, mtu, ttl, underlay, persist, check: args.check, checkAfter },
                child,
            );
            this.tunnels[t.name] = tunnel;
            this.info[t.name] = { protocol: t.protocol, encap: t.encap, port: t.port, ends: tunnel.ends };
            // One result per managed end, in the tunnel's order.
            const checked = t.ends.filter((e) => !farAddress.has(e.host));
            checks.push(tunnel.checks.apply((cs) => cs.map((c, i) => ({ tunnel: t.name, host: checked[i].host, ...c }))));
        }
        this.checks = pulumi.all(checks).apply((cs) => cs.flat());
        this.registerOutputs({ checks: this.checks, kernels: this.kernels });
    }
}

/**
 * Each planned host's Firewall: its receive ports open to the tunnels' peers (a far end by its
 * address), after the kernel check: a host that cannot carry the tunnels gets no rules either.
 */
function declareFirewalls(
    name: string,
    plan: ReturnType<typeof planTopology>,
    hosts: Record<string, TunnelHost>,
    farAddress: ReadonlyMap<string, string>,
    preps: Record<string, HostPrep>,
    child: pulumi.ComponentResourceOptions,
): Record<string, Firewall> {
    const firewalls: Record<string, Firewall> = {};
    const address = (peer: string) => farAddress.get(peer) ?? hosts[peer].underlayAddress;
    for (const h of plan.hosts) {
        if (!h.firewall) continue;
        const ports = h.firewall.ports.map((p) => ({ port: p.port, peers: p.peers.map(address) }));
        const fw = { host: hosts[h.host], ports, namespace: stateNamespace(), persist: h.firewall.persist, dependsOn: [preps[h.host].ready] };
        firewalls[h.host] = new Firewall(`${name}-${h.host}-firewall`, fw, child);
    }
    return firewalls;
}

function endKey(host: string, tunnel: string): string {
    return `${host}\0${tunnel}`;
}

/**
 * The kernel upgrades, chained as planned. Everything else on an upgraded host waits for its
 * verify (the machine's `readyAfter`): nothing is made on the old boot.
 */
function declareUpgrades(
    name: string,
    plan: readonly UpgradePlan[],
    machines: Record<string, TunnelHost>,
    opts: pulumi.ComponentResourceOptions,
): { upgrades: Record<string, KernelUpgrade>; hosts: Record<string, TunnelHost> } {
    const upgrades: Record<string, KernelUpgrade> = {};
    let hosts = machines;
    for (const u of plan) {
        const { package: pkg, repository, key, rebootTimeout } = u.kernel;
        const after = u.after === undefined ? [] : [upgrades[u.after].verify];
        const upgradeArgs = { host: hosts[u.host], modules: u.modules, package: pkg, repository, key, rebootTimeout, after };
        const upgrade = new KernelUpgrade(`${name}-${u.host}-kernel-upgrade`, upgradeArgs, opts);
        upgrades[u.host] = upgrade;
        const m = hosts[u.host];
        hosts = { ...hosts, [u.host]: { ...m, readyAfter: [...(m.readyAfter ?? []), upgrade.verify] } };
    }
    return { upgrades, hosts };
}
