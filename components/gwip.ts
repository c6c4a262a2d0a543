import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { CommandScripts, hostCommand, TunnelHost } from "./host";
import { printInstanceId, script, sh, shq } from "./shell";
import { checkIp, formatIp, parseIp } from "../lib/inet";
import { checkIfname, throwIfInvalid } from "../lib/validate";

export interface GwipArgs {
    readonly host: TunnelHost;
    /** The tunnel interface the address goes on. */
    readonly ifname: string;
    /** The gateway address (the guide's 10.10.10.1 on k1); IPv6 on a sit tunnel. */
    readonly address: string;
    /** The link's instance: a recreated link loses its addresses, so this one is recreated too. */
    readonly linkInstance: pulumi.Input<string>;
    readonly dependsOn?: pulumi.Resource[];
}

/**
 * `ip addr add 10.10.10.1/32 dev ftok2` / `ip addr del 10.10.10.1/32 dev ftok2` (IPv6: a /128).
 * Create uses `ip addr replace`, so an address left from a crashed run is not an error; delete
 * does nothing when the address or the interface is gone.
 */
export function gwipScripts(ifname: string, address: string): CommandScripts {
    const ip = parseIp(address);
    const v6 = ip?.family === 6;
    // `ip` prints IPv6 addresses compressed: match what it prints.
    const cidr = `${ip ? formatIp(ip) : address}/${v6 ? 128 : 32}`;
    return {
        create: script(sh`ip addr replace ${cidr} dev ${ifname}`, printInstanceId),
        delete: script(
            `if ${sh`ip -o addr show dev ${ifname} 2>/dev/null`} | grep -qF ${shq(`${v6 ? "inet6" : "inet"} ${cidr} `)}; then ${sh`ip addr del ${cidr} dev ${ifname}`}; fi`,
        ),
    };
}

/** The gateway IP (GWIP) of one tunnel end. */
export class Gwip extends pulumi.ComponentResource {
    public readonly address: string;
    public readonly instance: pulumi.Output<string>;
    public readonly command: command.remote.Command;

    constructor(name: string, args: GwipArgs, opts: pulumi.ComponentResourceOptions = {}) {
        throwIfInvalid([checkIfname(`Gwip ${name}: ifname`, args.ifname), checkIp(`Gwip ${name}: address`, args.address)]);
        super("fou:index:Gwip", name, {}, opts);
        this.address = args.address;
        this.command = hostCommand(
            `${name}-addr`,
            {
                host: args.host,
                scripts: gwipScripts(args.ifname, args.address),
                triggers: [args.ifname, args.address, args.linkInstance],
            },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.instance = this.command.stdout;
        this.registerOutputs({ address: this.address, instance: this.instance });
    }
}
