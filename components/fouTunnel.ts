import * as pulumi from "@pulumi/pulumi";
import { FouPort } from "./fouPort";
import { BuiltEnd, declareEnd, endMachine, TunnelSettings } from "./fouTunnelEnd";
import { TunnelHost } from "./host";
import { checkCidr, checkIp, checkUnderlay } from "../lib/inet";
import { TunnelOptions } from "./ipipFouLink";
import { TunnelCheck, TunnelCheckResult } from "./tunnelCheck";
import { checkHostName, checkIfname, throwIfInvalid } from "../lib/validate";
import { TUNNEL_OPTION_DEFAULTS, defaultIfname, innerFamily, portIpproto, problemText, tunnelOptionProblems } from "../lib/vocabulary";

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

/**
 * An end this stack does not manage (a router, another team's host): nothing is declared on it.
 * The managed end sends to its underlay address and pings its GWIP; its operator builds its half
 * (components/farEnd.ts says what to run).
 */
export interface FarEndArgs {
    /** Its name (messages; the managed end's default interface `fto<name>`) and underlay address. */
    readonly far: { readonly name: string; readonly underlayAddress: pulumi.Input<string> };
    /** Its GWIP, the managed end's ping target and route destination. */
    readonly gwip: string;
    /** Prefixes it routes into the tunnel: the managed end then filters reverse paths loosely. */
    readonly routes?: string[];
}

/** Either end of a tunnel: one on a host the stack manages, or a far end. */
export type AnyEndArgs = TunnelEndArgs | FarEndArgs;

export interface FouTunnelArgs extends TunnelOptions {
    /** End a; at most one of a and b is a far end. */
    readonly a: AnyEndArgs;
    readonly b: AnyEndArgs;
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
 * A far end ({@link FarEndArgs}) gets nothing: only the managed end is built, checked and destroyed.
 */
export class FouTunnel extends pulumi.ComponentResource {
    /** The managed ends (both, or the one whose peer is a far end). */
    public readonly ends: TunnelEndInfo[];
    /** Host name → GWIP. */
    public readonly gwips: Record<string, string>;
    /** Host name → tunnel interface. */
    public readonly interfaces: Record<string, string>;
    /** The ping/capture result from each end, when checks are on. */
    public readonly checks: pulumi.Output<TunnelCheckResult[]>;

    constructor(name: string, args: FouTunnelArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const ttl = args.ttl ?? TUNNEL_OPTION_DEFAULTS.ttl;
        const protocol = args.protocol ?? TUNNEL_OPTION_DEFAULTS.protocol;
        const encap = args.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
        throwIfInvalid(validateTunnel(name, args, ttl));
        super("fou:index:FouTunnel", name, {}, opts);

        const settings: TunnelSettings = { name, args, protocol, encap, ttl, underlay: args.underlay ?? 4 };
        const built = [
            ...("far" in args.a ? [] : [declareEnd(settings, args.a, args.b, this)]),
            ...("far" in args.b ? [] : [declareEnd(settings, args.b, args.a, this)]),
        ];
        const checks = (args.check ?? true) ? declareChecks(args, built, this) : [];

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

/**
 * A ping through the tunnel from each managed end, with a capture of the FOU packets on the
 * underlay. Each end checks after both ends are complete: the replies need the peer's route (a
 * far end's is its operator's, made before or after: the check fails until it is there).
 */
function declareChecks(args: FouTunnelArgs, built: BuiltEnd[], parent: pulumi.Resource): pulumi.Output<TunnelCheckResult>[] {
    const allRoutes = built.flatMap((b) => b.routes);
    return built.map(
        (b) =>
            new TunnelCheck(
                b.prefix,
                {
                    host: b.self.host,
                    gwip: b.self.gwip,
                    peerGwip: b.peer.gwip,
                    local: b.self.host.underlayAddress,
                    remote: endMachine(b.peer).underlayAddress,
                    port: args.port,
                    after: allRoutes.map((r) => r.instance),
                    rerunAfter: built.flatMap((e) => [e.port.instance, e.link.instance, e.gwip.instance, ...e.routes.map((r) => r.instance)]),
                    dependsOn: [...allRoutes.map((r) => r.command), ...built.map((e) => e.port.command), ...(args.checkAfter ?? [])],
                },
                { parent },
            ).result,
    );
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
    const underlay = args.underlay ?? 4;
    for (const [self, peer, side] of [
        [args.a, args.b, "a"],
        [args.b, args.a, "b"],
    ] as const) {
        // An address known now is checked now; one from another resource, when the link is made.
        const address = endMachine(self).underlayAddress;
        const where = "far" in self ? `${side}.far.underlayAddress` : `${side}.host.underlayAddress`;
        problems.push(
            typeof address === "string" ? checkUnderlay(`${p}: ${where}`, address, underlay) : undefined,
            "far" in self ? checkHostName(`${p}: ${side}.far.name`, self.far.name) : checkHostName(`${p}: ${side}.host.name`, self.host.name),
            checkIp(`${p}: ${side}.gwip`, self.gwip, family),
            ...(self.routes ?? []).map((r, i) => checkCidr(`${p}: ${side}.routes[${i}]`, r, family)),
        );
        if ("far" in self) {
            continue;
        }
        problems.push(checkIfname(`${p}: ${side}.ifname`, self.ifname ?? defaultIfname(endMachine(peer).name)));
        const fp = self.fouPort;
        const needs = portIpproto(encap, protocol);
        if (fp && (fp.port !== args.port || fp.encap !== encap || fp.ipproto !== needs || fp.family !== underlay)) {
            const v6 = (f: number) => (f === 6 ? " (IPv6)" : "");
            problems.push(
                `${p}: ${side}.fouPort is ${fp.encap} port ${fp.port}${fp.ipproto === undefined ? "" : ` ipproto ${fp.ipproto}`}${v6(fp.family)}; ` +
                    `this tunnel needs ${encap} port ${args.port}${needs === undefined ? "" : ` ipproto ${needs}`}${v6(underlay)}`,
            );
        }
    }
    if ("far" in args.a && "far" in args.b) {
        problems.push(`${p}: both ends are far ends (${args.a.far.name}, ${args.b.far.name}); the tunnel needs an end on a host the stack manages`);
    }
    if (endMachine(args.a).name === endMachine(args.b).name) {
        problems.push(`${p}: both ends are host "${endMachine(args.a).name}"; a tunnel joins two different hosts`);
    }
    if (args.a.gwip === args.b.gwip) {
        problems.push(`${p}: both ends have GWIP ${args.a.gwip}; each end needs its own`);
    }
    return problems;
}
