import * as pulumi from "@pulumi/pulumi";
import { BootUnit } from "./bootUnit";
import { FouPort } from "./fouPort";
import { Gwip, gwipObject } from "./gwip";
import { TunnelHost } from "./host";
import { checkCidr, checkIp } from "../lib/inet";
import { IpipFouLink, TunnelOptions } from "./ipipFouLink";
import { Route, routeObject } from "./route";
import { sh } from "./shell";
import { TunnelCheck, TunnelCheckResult } from "./tunnelCheck";
import { checkHostName, checkIfname, throwIfInvalid } from "../lib/validate";
import { IPPROTO, MODULES, TUNNEL_OPTION_DEFAULTS, defaultIfname, innerFamily, portIpproto, problemText, tunnelOptionProblems } from "../lib/vocabulary";

/** One end of a tunnel. */
export interface TunnelEndArgs {
    readonly host: TunnelHost;
    /** This end's gateway address (GWIP), e.g. 10.10.10.1; IPv6 for a sit tunnel. */
    readonly gwip: string;
    /** Tunnel interface name; default `fto<peer name>` (the guide's `ftok2` on k1). */
    readonly ifname?: string;
    /** Prefixes behind the peer to route through the tunnel from this end. */
    readonly routes?: string[];
    /** Host preparation (kernel check, modules, forwarding) to run first. */
    readonly prepared?: pulumi.Resource;
    /**
     * This host's receive port when other tunnels share it (one `ip fou add` per port and
     * binding per host). Default: the tunnel adds its own port and deletes it with itself.
     */
    readonly fouPort?: FouPort;
}

export interface FouTunnelArgs extends TunnelOptions {
    readonly a: TunnelEndArgs;
    readonly b: TunnelEndArgs;
    /** UDP port on both hosts (the guide's 5555). */
    readonly port: number;
    /** Replay the tunnel at boot (a systemd unit per end); default false. */
    readonly persist?: boolean;
    /** Ping through the tunnel from both ends after it is built; default true. */
    readonly check?: boolean;
    /** More resources the checks wait for (e.g. firewall rules on the hosts). */
    readonly checkAfter?: pulumi.Resource[];
}

/** What one end of a built tunnel looks like. */
export interface TunnelEndInfo {
    readonly host: string;
    readonly ifname: string;
    readonly gwip: string;
    readonly peerGwip: string;
    readonly underlay: pulumi.Output<string>;
    readonly mtu: pulumi.Output<number>;
}

/**
 * A FOU tunnel between two hosts, declared once and mirrored as the guide does by hand: on each
 * host `ip fou add port P ipproto 4`, `ip link add fto<peer> type ipip remote <peer> local
 * <self> ttl 255 dev <dev> encap fou encap-sport auto encap-dport P`, link up,
 * `ip addr add <gwip> dev fto<peer>`, `ip route add to <peer gwip> via <gwip> dev fto<peer>`.
 * sit/GRE, GUE, a fixed source port, checksums and an MTU change only the port and link lines.
 * Port → link → address → route on each host, both hosts in parallel; destroy runs in reverse.
 */
export class FouTunnel extends pulumi.ComponentResource {
    public readonly ends: TunnelEndInfo[];
    /** Host name → GWIP. */
    public readonly gwips: Record<string, string>;
    /** Host name → tunnel interface. */
    public readonly interfaces: Record<string, string>;
    /** The ping/capture result from each end, when checks are on. */
    public readonly checks: pulumi.Output<TunnelCheckResult[]>;

    constructor(name: string, args: FouTunnelArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const sides: [TunnelEndArgs, TunnelEndArgs][] = [
            [args.a, args.b],
            [args.b, args.a],
        ];
        const ttl = args.ttl ?? TUNNEL_OPTION_DEFAULTS.ttl;
        const protocol = args.protocol ?? TUNNEL_OPTION_DEFAULTS.protocol;
        const encap = args.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
        throwIfInvalid(validateTunnel(name, args, ttl));
        super("fou:index:FouTunnel", name, {}, opts);
        const v6 = innerFamily(protocol) === 6;

        const built = sides.map(([self, peer]) => {
            const prefix = `${name}-${self.host.name}`;
            const ifname = self.ifname ?? defaultIfname(peer.host.name);
            // Both hosts must pass preparation before either is touched: a host that fails its
            // kernel check leaves its peer unconfigured, not half a tunnel.
            const after = [args.a.prepared, args.b.prepared].filter((r): r is pulumi.Resource => r !== undefined);
            const port =
                self.fouPort ??
                new FouPort(
                    prefix,
                    { host: self.host, port: args.port, encap, ipproto: IPPROTO[protocol], persist: args.persist, dependsOn: after },
                    { parent: this },
                );
            const link = new IpipFouLink(
                prefix,
                {
                    host: self.host,
                    ifname,
                    remote: peer.host.underlayAddress,
                    local: self.host.underlayAddress,
                    port: args.port,
                    protocol,
                    encap,
                    sport: args.sport,
                    csum: args.csum,
                    mtu: args.mtu,
                    // Routed prefixes arrive from sources the reverse path may not lead back to.
                    looseRpFilter: [args.a, args.b].some((e) => (e.routes ?? []).length > 0),
                    ttl,
                    // Not after the port: `ip link add … encap-dport P` needs only the modules, and
                    // both are in place before anything is sent (the check waits for both).
                    dependsOn: after,
                },
                { parent: this },
            );
            const gwip = new Gwip(
                prefix,
                { host: self.host, ifname, address: self.gwip, linkInstance: link.instance, dependsOn: [link.command] },
                { parent: this },
            );
            // IPv4 routes go via this end's GWIP as in the guide; IPv6 refuses a local gateway.
            const via = v6 ? undefined : self.gwip;
            const destinations = [peer.gwip, ...(self.routes ?? [])];
            const routes = destinations.map(
                (destination, i) =>
                    new Route(
                        i === 0 ? prefix : `${prefix}-${destination.replace(/[./:]/g, "-")}`,
                        { host: self.host, ifname, destination, via, gwipInstance: gwip.instance, dependsOn: [gwip.command] },
                        { parent: this },
                    ),
            );
            if (args.persist) {
                // The same idempotent steps, replayed at boot in the same order.
                const modules = MODULES[protocol].map((m) => sh`modprobe ${m}`).join("; ");
                new BootUnit(
                    prefix,
                    {
                        host: self.host,
                        unit: ifname.toLowerCase().replace(/[^a-z0-9.-]/g, "-"),
                        description: `tunnel ${name}, ${ifname} to ${peer.host.name}`,
                        script: pulumi.all([link.applyScript, self.host.device]).apply(([linkScript, device]) =>
                            [
                                "set -eu",
                                // At boot the underlay device may still be on its way.
                                sh`i=0; while ! ip link show dev ${device} >/dev/null 2>&1 && [ $i -lt 60 ]; do i=$((i+1)); sleep 1; done`,
                                modules,
                                `(\n${linkScript}\n)`,
                                `(\n${gwipObject(ifname, self.gwip).apply}\n)`,
                                ...destinations.map((d) => `(\n${routeObject(ifname, d, via).apply}\n)`),
                            ].join("\n"),
                        ),
                        dependsOn: routes.map((r) => r.command),
                    },
                    { parent: this },
                );
            }
            return { self, peer, ifname, port, link, gwip, routes, prefix };
        });
        const checks: pulumi.Output<TunnelCheckResult>[] = [];
        if (args.check ?? true) {
            // Each end checks after both ends are complete: the replies need the peer's route.
            const allRoutes = built.flatMap((b) => b.routes);
            for (const b of built) {
                const check = new TunnelCheck(
                    b.prefix,
                    {
                        host: b.self.host,
                        gwip: b.self.gwip,
                        peerGwip: b.peer.gwip,
                        local: b.self.host.underlayAddress,
                        remote: b.peer.host.underlayAddress,
                        port: args.port,
                        after: allRoutes.map((r) => r.instance),
                        rerunAfter: built.flatMap((e) => [e.port.instance, e.link.instance, e.gwip.instance, ...e.routes.map((r) => r.instance)]),
                        dependsOn: [...allRoutes.map((r) => r.command), ...built.map((e) => e.port.command), ...(args.checkAfter ?? [])],
                    },
                    { parent: this },
                );
                checks.push(check.result);
            }
        }

        this.ends = built.map((b) => ({
            host: b.self.host.name,
            ifname: b.ifname,
            gwip: b.self.gwip,
            peerGwip: b.peer.gwip,
            underlay: pulumi.output(b.self.host.underlayAddress),
            mtu: b.link.mtu,
        }));
        this.gwips = Object.fromEntries(built.map((b) => [b.self.host.name, b.self.gwip]));
        this.interfaces = Object.fromEntries(built.map((b) => [b.self.host.name, b.ifname]));
        this.checks = pulumi.all(checks);
        this.registerOutputs({ gwips: this.gwips, interfaces: this.interfaces, checks: this.checks });
    }
}

/** Checks across both ends: names, addresses and routes that cannot work together. */
export function validateTunnel(name: string, args: FouTunnelArgs, ttl: number): (string | undefined)[] {
    const p = `FouTunnel ${name}`;
    const protocol = args.protocol ?? TUNNEL_OPTION_DEFAULTS.protocol;
    const encap = args.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
    const problems: (string | undefined)[] = tunnelOptionProblems(
        { protocol, encap, port: args.port, sport: args.sport, mtu: args.mtu, ttl },
        (f) => `${p}: ${f}`,
    ).map(problemText);
    const family = innerFamily(protocol);
    for (const [self, peer, side] of [
        [args.a, args.b, "a"],
        [args.b, args.a, "b"],
    ] as const) {
        problems.push(
            checkHostName(`${p}: ${side}.host.name`, self.host.name),
            checkIp(`${p}: ${side}.gwip`, self.gwip, family),
            checkIfname(`${p}: ${side}.ifname`, self.ifname ?? defaultIfname(peer.host.name)),
            ...(self.routes ?? []).map((r, i) => checkCidr(`${p}: ${side}.routes[${i}]`, r, family)),
        );
        const fp = self.fouPort;
        const needs = portIpproto(encap, protocol);
        if (fp && (fp.port !== args.port || fp.encap !== encap || fp.ipproto !== needs)) {
            problems.push(
                `${p}: ${side}.fouPort is ${fp.encap} port ${fp.port}${fp.ipproto === undefined ? "" : ` ipproto ${fp.ipproto}`}; this tunnel needs ${encap} port ${args.port}${needs === undefined ? "" : ` ipproto ${needs}`}`,
            );
        }
    }
    if (args.a.host.name === args.b.host.name) {
        problems.push(`${p}: both ends are host "${args.a.host.name}"; a tunnel joins two different hosts`);
    }
    if (args.a.gwip === args.b.gwip) {
        problems.push(`${p}: both ends have GWIP ${args.a.gwip}; each end needs its own`);
    }
    return problems;
}
