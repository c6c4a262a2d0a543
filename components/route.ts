import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { CommandScripts, hostCommand, TunnelHost } from "./host";
import { printInstanceId, script, sh } from "./shell";
import { checkIfname, checkIpv4, checkPrefix, throwIfInvalid } from "./validate";

export interface RouteArgs {
    readonly host: TunnelHost;
    /** The tunnel interface. */
    readonly ifname: string;
    /** Where to: the peer's GWIP (a /32), or a prefix reachable behind the peer. */
    readonly destination: string;
    /** The gateway, this end's GWIP as in the guide. */
    readonly via: string;
    /** The GWIP's instance: the route is recreated when the address under it is. */
    readonly gwipInstance: pulumi.Input<string>;
    readonly dependsOn?: pulumi.Resource[];
}

/** `10.10.10.2` → `10.10.10.2/32`; prefixes stay as given. */
export function normalizePrefix(destination: string): string {
    return destination.includes("/") ? destination : `${destination}/32`;
}

/**
 * `ip route add to 10.10.10.2/32 via 10.10.10.1 dev ftok2` / `ip route del to 10.10.10.2/32
 * via 10.10.10.1 dev ftok2`. Create uses `ip route replace` (idempotent); delete does nothing
 * when the route or the interface is gone.
 */
export function routeScripts(ifname: string, destination: string, via: string): CommandScripts {
    const to = normalizePrefix(destination);
    return {
        create: script(sh`ip route replace to ${to} via ${via} dev ${ifname}`, printInstanceId),
        delete: script(
            `if ${sh`ip route show to exact ${to} dev ${ifname} 2>/dev/null`} | grep -q .; then ${sh`ip route del to ${to} via ${via} dev ${ifname}`}; fi`,
        ),
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
            checkPrefix(`Route ${name}: destination`, normalizePrefix(args.destination)),
            checkIpv4(`Route ${name}: via`, args.via),
        ]);
        super("fou:index:Route", name, {}, opts);
        this.destination = normalizePrefix(args.destination);
        this.command = hostCommand(
            `${name}-route`,
            {
                host: args.host,
                scripts: routeScripts(args.ifname, args.destination, args.via),
                triggers: [args.ifname, this.destination, args.via, args.gwipInstance],
            },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.instance = this.command.stdout;
        this.registerOutputs({ destination: this.destination, instance: this.instance });
    }
}
