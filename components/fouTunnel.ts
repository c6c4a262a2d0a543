import * as pulumi from "@pulumi/pulumi";
import { FouPort } from "./fouPort";
import { Gwip } from "./gwip";
import { TunnelHost } from "./host";
import { IpipFouLink } from "./ipipFouLink";
import { Route } from "./route";
import { TunnelCheck, TunnelCheckResult } from "./tunnelCheck";
import { checkHostName, checkIfname, checkInt, checkIpv4, checkPort, checkPrefix, throwIfInvalid } from "./validate";

/** One end of a tunnel. */
export interface TunnelEndArgs {
    readonly host: TunnelHost;
    /** This end's gateway address (GWIP), e.g. 10.10.10.1. */
    readonly gwip: string;
    /** Tunnel interface name; default `fto<peer name>` (the guide's `ftok2` on k1). */
    readonly ifname?: string;
    /** Prefixes behind the peer to route through the tunnel from this end. */
    readonly routes?: string[];
    /** Host preparation (kernel check, modules, forwarding) to run first. */
    readonly prepared?: pulumi.Resource;
}

export interface FouTunnelArgs {
    readonly a: TunnelEndArgs;
    readonly b: TunnelEndArgs;
    /** FOU UDP port on both hosts (the guide's 5555). */
    readonly port: number;
    /** Outer TTL; default 255. */
    readonly ttl?: number;
    /** Ping through the tunnel from both ends after it is built; default true. */
    readonly check?: boolean;
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

/** Default interface name: `fto` + the peer's name, as the guide's `ftok2`. */
export function defaultIfname(peerName: string): string {
    return `fto${peerName}`;
}

/**
 * A FOU (IPIP over UDP) tunnel between two hosts, declared once and mirrored as the guide does by
 * hand: on each host `ip fou add port P ipproto 4`, `ip link add fto<peer> type ipip remote
 * <peer> local <self> ttl 255 dev <dev> encap fou encap-sport auto encap-dport P`, link up,
 * `ip addr add <gwip> dev fto<peer>`, `ip route add to <peer gwip> via <gwip> dev fto<peer>`.
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
        const ttl = args.ttl ?? 255;
        throwIfInvalid(validateTunnel(name, args, ttl));
        super("fou:index:FouTunnel", name, {}, opts);

        const built = sides.map(([self, peer]) => {
            const prefix = `${name}-${self.host.name}`;
            const ifname = self.ifname ?? defaultIfname(peer.host.name);
            // Both hosts must pass preparation before either is touched: a host that fails its
            // kernel check leaves its peer unconfigured, not half a tunnel.
            const after = [args.a.prepared, args.b.prepared].filter((r): r is pulumi.Resource => r !== undefined);
            const port = new FouPort(prefix, { host: self.host, port: args.port, dependsOn: after }, { parent: this });
            const link = new IpipFouLink(
                prefix,
                {
                    host: self.host,
                    ifname,
                    remote: peer.host.underlayAddress,
                    local: self.host.underlayAddress,
                    port: args.port,
                    ttl,
                    dependsOn: [port.command],
                },
                { parent: this },
            );
            const gwip = new Gwip(
                prefix,
                { host: self.host, ifname, address: self.gwip, linkInstance: link.instance, dependsOn: [link.command] },
                { parent: this },
            );
            const routes = [peer.gwip, ...(self.routes ?? [])].map(
                (destination, i) =>
                    new Route(
                        i === 0 ? prefix : `${prefix}-${destination.replace(/[./]/g, "-")}`,
                        {
                            host: self.host,
                            ifname,
                            destination,
                            via: self.gwip,
                            gwipInstance: gwip.instance,
                            dependsOn: [gwip.command],
                        },
                        { parent: this },
                    ),
            );
            return { self, peer, ifname, link, gwip, routes, prefix };
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
                        dependsOn: allRoutes.map((r) => r.command),
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
    const problems: (string | undefined)[] = [checkPort(`${p}: port`, args.port), checkInt(`${p}: ttl`, ttl, 1, 255)];
    for (const [self, peer, side] of [
        [args.a, args.b, "a"],
        [args.b, args.a, "b"],
    ] as const) {
        problems.push(
            checkHostName(`${p}: ${side}.host.name`, self.host.name),
            checkIpv4(`${p}: ${side}.gwip`, self.gwip),
            checkIfname(`${p}: ${side}.ifname`, self.ifname ?? defaultIfname(peer.host.name)),
            ...(self.routes ?? []).map((r, i) => checkPrefix(`${p}: ${side}.routes[${i}]`, r)),
        );
    }
    if (args.a.host.name === args.b.host.name) {
        problems.push(`${p}: both ends are host "${args.a.host.name}"; a tunnel joins two different hosts`);
    }
    if (args.a.gwip === args.b.gwip) {
        problems.push(`${p}: both ends have GWIP ${args.a.gwip}; each end needs its own`);
    }
    return problems;
}
