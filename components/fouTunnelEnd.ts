import * as pulumi from "@pulumi/pulumi";
import { BootUnit } from "./bootUnit";
import { FouPort } from "./fouPort";
import type { AnyEndArgs, FouTunnelArgs, TunnelEndArgs } from "./fouTunnel";
import { Gwip, gwipObject } from "./gwip";
import { IpipFouLink } from "./ipipFouLink";
import { Route, routeObject } from "./route";
import { sh } from "./shell";
import type { Family } from "../lib/inet";
import { Encap, IPPROTO, TunnelProtocol, defaultIfname, innerFamily, tunnelModules } from "../lib/vocabulary";

/** What both ends of a tunnel share: its name, its arguments, and the options with defaults applied. */
export interface TunnelSettings {
    readonly name: string;
    readonly args: FouTunnelArgs;
    readonly protocol: TunnelProtocol;
    readonly encap: Encap;
    readonly ttl: number;
    /** The underlay's family (both ends' addresses). */
    readonly underlay: Family;
}

/** The name and underlay address of an end's machine, managed or not. */
export function endMachine(e: AnyEndArgs): { readonly name: string; readonly underlayAddress: pulumi.Input<string> } {
    return "far" in e ? e.far : e.host;
}

/** One end as declared: its resources, and the names and addresses they use. */
export interface BuiltEnd {
    readonly self: TunnelEndArgs;
    /** The other end: managed too, or a far end. */
    readonly peer: AnyEndArgs;
    /** `<tunnel>-<host>`: the end's resources are named after it. */
    readonly prefix: string;
    readonly ifname: string;
    readonly port: FouPort;
    readonly link: IpipFouLink;
    readonly gwip: Gwip;
    readonly routes: Route[];
}

/**
 * One end of a tunnel on SELF's host, under PARENT: the FOU port (unless the end shares one:
 * `ip fou add port P ipproto 4`), the link (`ip link add fto<peer> type ipip remote <peer> local
 * <self> ttl 255 dev <dev> encap fou encap-sport auto encap-dport P`, up), the GWIP (`ip addr add
 * <gwip> dev fto<peer>`), the routes (`ip route add to <peer gwip> via <gwip> dev fto<peer>`,
 * then each routed prefix), and, when the tunnel persists, a boot unit replaying them.
 */
export function declareEnd(t: TunnelSettings, self: TunnelEndArgs, peer: AnyEndArgs, parent: pulumi.Resource): BuiltEnd {
    const { args, protocol, encap } = t;
    const prefix = `${t.name}-${self.host.name}`;
    const peerMachine = endMachine(peer);
    const ifname = self.ifname ?? defaultIfname(peerMachine.name);
    // Both hosts must pass preparation before either is touched: a host that fails its
    // kernel check leaves its peer unconfigured, not half a tunnel.
    const after = [args.a, args.b].flatMap((e) => ("prepared" in e && e.prepared !== undefined ? [e.prepared] : []));
    const port =
        self.fouPort ??
        new FouPort(
            prefix,
            { host: self.host, port: args.port, encap, ipproto: IPPROTO[protocol], family: t.underlay, persist: args.persist, dependsOn: after },
            { parent },
        );
    const link = new IpipFouLink(
        prefix,
        {
            host: self.host,
            ifname,
            remote: peerMachine.underlayAddress,
            local: self.host.underlayAddress,
            port: args.port,
            protocol,
            encap,
            sport: args.sport,
            csum: args.csum,
            mtu: args.mtu,
            // Routed prefixes arrive from sources the reverse path may not lead back to.
            looseRpFilter: [args.a, args.b].some((e) => (e.routes ?? []).length > 0),
            ttl: t.ttl,
            underlay: t.underlay,
            // Not after the port: `ip link add … encap-dport P` needs only the modules, and
            // both are in place before anything is sent (the check waits for both).
            dependsOn: after,
        },
        { parent },
    );
    const gwip = new Gwip(
        prefix,
        { host: self.host, ifname, address: self.gwip, linkInstance: link.instance, dependsOn: [link.command] },
        { parent },
    );
    // IPv4 routes go via this end's GWIP as in the guide; IPv6 refuses a local gateway.
    const via = innerFamily(protocol) === 6 ? undefined : self.gwip;
    const destinations = [peer.gwip, ...(self.routes ?? [])];
    const routes = destinations.map(
        (destination, i) =>
            new Route(
                i === 0 ? prefix : `${prefix}-${destination.replace(/[./:]/g, "-")}`,
                { host: self.host, ifname, destination, via, gwipInstance: gwip.instance, dependsOn: [gwip.command] },
                { parent },
            ),
    );
    const end = { self, peer, ifname, port, link, gwip, routes, prefix };
    if (args.persist) declareBootUnit(t, end, destinations, via, parent);
    return end;
}

/**
 * The end's boot unit: the same idempotent steps, replayed at boot in the same order (modules,
 * link, GWIP, routes to DESTINATIONS via VIA), once the underlay device is there.
 */
function declareBootUnit(t: TunnelSettings, end: BuiltEnd, destinations: string[], via: string | undefined, parent: pulumi.Resource): void {
    const { self, peer, ifname, link, routes, prefix } = end;
    const modules = tunnelModules(t.protocol, t.underlay).map((m) => sh`modprobe ${m}`).join("; ");
    new BootUnit(
        prefix,
        {
            host: self.host,
            unit: ifname.toLowerCase().replace(/[^a-z0-9.-]/g, "-"),
            description: `tunnel ${t.name}, ${ifname} to ${endMachine(peer).name}`,
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
        { parent },
    );
}
