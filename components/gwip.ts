import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand } from "./hostState";
import { contains, sh } from "./shell";
import { canonicalIp, checkIp, parseIp } from "../lib/inet";
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
 * Apply uses `ip addr replace`, so an address already there is not an error; remove does
 * nothing when the address or the interface is gone.
 */
export function gwipObject(ifname: string, address: string): HostObject {
    const v6 = parseIp(address)?.family === 6;
    const cidr = `${canonicalIp(address)}/${v6 ? 128 : 32}`;
    const present = contains(`"$(${sh`ip -o addr show dev ${ifname} 2>/dev/null`})"`, `${v6 ? "inet6" : "inet"} ${cidr} `);
    return {
        apply: sh`ip addr replace ${cidr} dev ${ifname}`,
        check: expect(present, `address ${cidr} is not on ${ifname}`),
        remove: `if ${present}; then ${sh`ip addr del ${cidr} dev ${ifname}`}; fi`,
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
        const step = objectCommand(
            `${name}-addr`,
            {
                host: args.host,
                object: gwipObject(args.ifname, args.address),
                triggers: [args.ifname, args.address, args.linkInstance],
                what: `address ${args.address} on ${args.ifname}`,
            },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.command = step.command;
        this.instance = step.instance;
        this.registerOutputs({ address: this.address, instance: this.instance });
    }
}
