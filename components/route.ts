import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand } from "./hostState";
import { contains, sh } from "./shell";
import { checkCidr, checkIp, familyOf, hostPrefix } from "../lib/inet";
import { checkIfname, throwIfInvalid } from "../lib/validate";

export interface RouteArgs {
    readonly host: TunnelHost;
    /** The tunnel interface. */
    readonly ifname: string;
    /** Where to: the peer's GWIP (a /32), or a prefix reachable behind the peer; IPv6 on sit. */
    readonly destination: string;
    /**
     * The gateway, this end's GWIP as in the guide. IPv6 refuses a local address as gateway, so
     * IPv6 routes leave it out and point at the (point-to-point) tunnel device alone.
     */
    readonly via?: string;
    /** The GWIP's instance: the route is recreated when the address under it is. */
    readonly gwipInstance: pulumi.Input<string>;
    readonly dependsOn?: pulumi.Resource[];
}

/** `10.10.10.2` → `10.10.10.2/32`, `fd00::2` → `fd00::2/128`; prefixes are written canonically. */
export function normalizePrefix(destination: string): string {
    return hostPrefix(destination);
}

/**
 * `ip route add to 10.10.10.2/32 via 10.10.10.1 dev ftok2` / `ip route del …` (IPv6:
 * `ip route add to fd00::2/128 dev ftok3`). Apply uses `ip route replace` (idempotent); remove
 * does nothing when the route or the interface is gone.
 */
export function routeObject(ifname: string, destination: string, via?: string): HostObject {
    const to = normalizePrefix(destination);
    const family = familyOf(to) === 6 ? "-6" : "-4";
    const route = via === undefined ? sh`to ${to} dev ${ifname}` : sh`to ${to} via ${via} dev ${ifname}`;
    const shown = sh`ip ${family} route show to exact ${to} dev ${ifname} 2>/dev/null`;
    const what = `route to ${to}${via === undefined ? "" : ` via ${via}`} dev ${ifname}`;
    return {
        apply: `ip route replace ${route}`,
        // `ip route` separates words with spaces, and a route with a gateway names its device after it.
        check: expect(via === undefined ? `[ -n "$(${shown})" ]` : contains(`" $(${shown}) "`, ` via ${via} `), `${what} is missing`),
        remove: `if [ -n "$(${shown})" ]; then ip route del ${route}; fi`,
        // `ip route replace` would take over a route to the same destination through any device.
        exclusive: {
            key: `route${family}-${to}`,
            present: `[ -n "$(${sh`ip ${family} route show to exact ${to} 2>/dev/null`})" ]`,
            what: `a route to ${to}`,
        },
    };
}

/** A static route through the tunnel. */
export class Route extends pulumi.ComponentResource {
    public readonly destination: string;
    /** Changes whenever the route is recreated (the tunnel check lists it in its triggers). */
    public readonly instance: pulumi.Output<string>;
    public readonly command: command.remote.Command;

    constructor(name: string, args: RouteArgs, opts: pulumi.ComponentResourceOptions = {}) {
        throwIfInvalid([
            checkIfname(`Route ${name}: ifname`, args.ifname),
            checkCidr(`Route ${name}: destination`, args.destination),
            args.via === undefined ? undefined : checkIp(`Route ${name}: via`, args.via, familyOf(args.destination)),
        ]);
        super("fou:index:Route", name, {}, opts);
        this.destination = normalizePrefix(args.destination);
        const step = objectCommand(
            `${name}-route`,
            {
                host: args.host,
                what: `route to ${this.destination} on ${args.ifname}`,
                object: routeObject(args.ifname, args.destination, args.via),
                triggers: [args.ifname, this.destination, ...(args.via === undefined ? [] : [args.via]), args.gwipInstance],
            },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.command = step.command;
        this.instance = step.instance;
        this.registerOutputs({ destination: this.destination, instance: this.instance });
    }
}
