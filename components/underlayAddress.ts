import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { BootUnit } from "./bootUnit";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand } from "./hostState";
import { contains, sh } from "./shell";
import { canonicalIp, checkUnderlay } from "../lib/inet";
import { checkIfname, checkInt, throwIfInvalid } from "../lib/validate";

export interface UnderlayAddressArgs {
    /** The machine, reached at its IPv4 address. */
    readonly host: TunnelHost;
    /** The IPv6 underlay address it gets, e.g. 2001:db8:5155::151. */
    readonly address: string;
    /** The on-link prefix the machines share (default 64): they reach each other without a router. */
    readonly prefixLength?: number;
    /** The device it goes on; default `eth0`. */
    readonly device?: string;
    /** Also add it at every boot (a systemd unit), as the persisted tunnels that go over it are. */
    readonly persist?: boolean;
}

/**
 * `ip -6 addr add 2001:db8:5155::151/64 dev eth0 nodad` / `ip -6 addr del …`: the address a
 * machine whose network the stack makes (a local VM on the stack's bridge) carries its IPv6
 * tunnels on. `nodad`: usable at once, without duplicate address detection's wait; the stack
 * gives each VM its own address. Apply keeps an address that is there already.
 */
export function underlayAddressObject(address: string, prefixLength: number, device: string): HostObject {
    const cidr = `${canonicalIp(address)}/${prefixLength}`;
    const present = contains(`"$(${sh`ip -o -6 addr show dev ${device} 2>/dev/null`})"`, ` inet6 ${cidr} `);
    return {
        apply: `if ! ${present}; then ${sh`ip -6 addr add ${cidr} dev ${device} nodad`}; fi`,
        check: expect(present, `address ${cidr} is not on ${device}`),
        remove: `if ${present}; then ${sh`ip -6 addr del ${cidr} dev ${device}`}; fi`,
    };
}

/** A machine's IPv6 underlay address, put on it by the stack (its network is the stack's). */
export class UnderlayAddress extends pulumi.ComponentResource {
    public readonly address: string;
    public readonly command: command.remote.Command;

    constructor(name: string, args: UnderlayAddressArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const prefixLength = args.prefixLength ?? 64;
        const device = args.device ?? "eth0";
        throwIfInvalid([
            checkUnderlay(`UnderlayAddress ${name}: address`, args.address, 6),
            checkInt(`UnderlayAddress ${name}: prefixLength`, prefixLength, 1, 128),
            checkIfname(`UnderlayAddress ${name}: device`, device),
        ]);
        super("fou:index:UnderlayAddress", name, {}, opts);
        this.address = args.address;
        const object = underlayAddressObject(args.address, prefixLength, device);
        const step = objectCommand(
            `${name}-underlay`,
            {
                host: args.host,
                object,
                triggers: [args.address, prefixLength, device],
                what: `underlay address ${args.address}`,
            },
            { parent: this },
        );
        this.command = step.command;
        if (args.persist) {
            const unit = { host: args.host, unit: "underlay6", description: `IPv6 underlay address ${args.address}`, script: object.apply, dependsOn: [this.command] };
            new BootUnit(`${name}-underlay`, unit, { parent: this });
        }
        this.registerOutputs({ address: this.address });
    }
}
