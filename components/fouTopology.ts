import * as pulumi from "@pulumi/pulumi";
import { Firewall } from "./firewall";
import { FouPort } from "./fouPort";
import { stateNamespace } from "./hostState";
import { FouTunnel, TunnelEndInfo } from "./fouTunnel";
import { TunnelHost } from "./host";
import { HostPrep } from "./hostPrep";
import { KernelUpgrade } from "./kernelUpgrade";
import { TunnelCheckResult } from "./tunnelCheck";
import type { TopologySpec } from "./topologySpec";
import { throwIfInvalid } from "../lib/validate";
import { MODULES, portIpproto } from "../lib/vocabulary";

export interface FouTopologyArgs {
    /** Hosts, tunnels and ports, validated, every default filled in (topology/ makes one). */
    readonly topology: TopologySpec;
    /** The machines, by topology host name. */
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
 * Every tunnel of a topology: each host prepared once (kernel check, the modules its tunnels
 * need, forwarding), one receive port per host and (port, binding) shared by the tunnels that
 * use it, then each tunnel mirrored on its two hosts. A shared port is a sibling of the tunnels,
 * not a child of one: destroying one tunnel (or deleting it from the file) leaves the port to the
 * others, and it goes only when no tunnel on the host uses it.
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
        let hosts = args.hosts;
        throwIfInvalid(
            topology.hosts
                .filter((h) => hosts[h.name] === undefined)
                .map((h) => `FouTopology ${name}: no machine for host ${h.name} of ${topology.source}`),
        );
        super("fou:index:FouTopology", name, {}, opts);
        const child = { parent: this };
        const modulesOf = (host: string) => [
            ...new Set(topology.tunnels.filter((t) => t.ends.some((e) => e.host === host)).flatMap((t) => MODULES[t.protocol])),
        ];

        // Hosts that asked for it get a kernel with fou first, one host at a time (each upgrade
        // waits for the previous one's verify), so a mesh keeps most paths while one reboots.
        // Everything else on such a host waits for its verify: nothing is made on the old boot.
        this.kernelUpgrades = {};
        let previous: pulumi.Resource | undefined;
        for (const h of topology.hosts) {
            if (!h.kernel?.upgrade) {
                continue;
            }
            const k = h.kernel;
            const upgrade = new KernelUpgrade(
                `${name}-${h.name}-kernel-upgrade`,
                {
                    host: hosts[h.name],
                    modules: modulesOf(h.name).length > 0 ? modulesOf(h.name) : MODULES.ipip,
                    package: k.package,
                    repository: k.repository,
                    key: k.key,
                    rebootTimeout: k.rebootTimeout,
                    after: previous ? [previous] : [],
                },
                child,
            );
            this.kernelUpgrades[h.name] = upgrade;
            previous = upgrade.verify;
            const m = hosts[h.name];
            hosts = { ...hosts, [h.name]: { ...m, readyAfter: [...(m.readyAfter ?? []), upgrade.verify] } };
        }
        this.kernels = pulumi
            .all(Object.entries(this.kernelUpgrades).map(([n, u]) => pulumi.all([u.kernelBefore, u.kernelAfter]).apply(([before, after]) => [n, { before, after }] as const)))
            .apply((es) => Object.fromEntries(es));

        this.preps = {};
        for (const h of topology.hosts) {
            const mine = topology.tunnels.filter((t) => t.ends.some((e) => e.host === h.name));
            if (mine.length === 0) {
                continue;
            }
            const modules = modulesOf(h.name);
            // Forwarding only where a tunnel carries routed prefixes: a GWIP-only tunnel ends at
            // its hosts, and turning a host into a router is no side effect to have by default.
            const ipForward = mine.some((t) => t.ends.some((e) => e.routes.length > 0));
            const upgrade = this.kernelUpgrades[h.name];
            this.preps[h.name] = new HostPrep(`${name}-${h.name}-prep`, { host: hosts[h.name], modules, ipForward }, upgrade ? { ...child, dependsOn: [upgrade] } : child);
        }

        // Each host's receive ports, closed to all but the peers of the tunnels that use them.
        this.firewalls = {};
        if (topology.firewall ?? true) {
            for (const h of topology.hosts) {
                const mine = topology.ports.filter((p) => p.host === h.name);
                if (mine.length === 0) {
                    continue;
                }
                const ports = mine.map((p) => ({
                    port: p.port,
                    peers: topology.tunnels
                        .filter((t) => p.tunnels.includes(t.name))
                        .flatMap((t) => t.ends.filter((e) => e.host !== h.name).map((e) => hosts[e.host].underlayAddress)),
                }));
                // A port that comes back at boot comes back closed: the rules persist with it.
                const persist = mine.some((p) => p.persist);
                this.firewalls[h.name] = new Firewall(
                    `${name}-${h.name}-firewall`,
                    { host: hosts[h.name], ports, namespace: stateNamespace(), persist },
                    child,
                );
            }
        }

        const portKey = (host: string, port: number, encap: string, ipproto?: number) => `${host}/${port}/${encap}/${ipproto ?? ""}`;
        const portByKey = new Map<string, FouPort>();
        this.ports = topology.ports.map((p) => {
            // Both hosts of every tunnel using the port are prepared first, as in FouTunnel.
            const users = topology.tunnels.filter((t) => p.tunnels.includes(t.name));
            const after = [...new Set(users.flatMap((t) => t.ends.map((e) => e.host)))].map((n) => this.preps[n].ready);
            const port = new FouPort(
                `${name}-${p.host}-${p.encap}-${p.port}`,
                { host: hosts[p.host], port: p.port, encap: p.encap, ipproto: p.ipproto, persist: p.persist, dependsOn: after },
                child,
            );
            portByKey.set(portKey(p.host, p.port, p.encap, p.ipproto), port);
            return port;
        });

        this.tunnels = {};
        this.info = {};
        const checks: pulumi.Output<(TunnelCheckResult & { tunnel: string; host: string })[]>[] = [];
        for (const t of topology.tunnels) {
            const end = (i: 0 | 1) => {
                const e = t.ends[i];
                return {
                    host: hosts[e.host],
                    gwip: e.gwip,
                    ifname: e.ifname,
                    routes: e.routes,
                    prepared: this.preps[e.host].ready,
                    fouPort: portByKey.get(portKey(e.host, t.port, t.encap, portIpproto(t.encap, t.protocol))),
                };
            };
            const tunnel = new FouTunnel(
                `${name}-${t.name}`,
                {
                    a: end(0),
                    b: end(1),
                    port: t.port,
                    protocol: t.protocol,
                    encap: t.encap,
                    sport: t.sport,
                    csum: t.csum,
                    mtu: t.mtu,
                    ttl: t.ttl,
                    persist: t.persist,
                    check: args.check,
                    // The check also proves the firewall lets the tunnel through.
                    checkAfter: t.ends.flatMap((e) => (this.firewalls[e.host] ? [this.firewalls[e.host].command] : [])),
                },
                child,
            );
            this.tunnels[t.name] = tunnel;
            this.info[t.name] = { protocol: t.protocol, encap: t.encap, port: t.port, ends: tunnel.ends };
            checks.push(tunnel.checks.apply((cs) => cs.map((c, i) => ({ tunnel: t.name, host: t.ends[i].host, ...c }))));
        }
        this.checks = pulumi.all(checks).apply((cs) => cs.flat());
        this.registerOutputs({ checks: this.checks, kernels: this.kernels });
    }
}
