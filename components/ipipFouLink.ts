import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { CommandScripts, hostCommand, TunnelHost } from "./host";
import { printInstanceId, script, sh } from "./shell";
import { checkIfname, checkInt, checkIpv4, checkPort, throwIfInvalid } from "./validate";

export interface IpipFouLinkArgs {
    readonly host: TunnelHost;
    /** Interface name, at most 15 characters (the guide's `ftok2`). */
    readonly ifname: string;
    /** The peer's underlay address (`remote`). */
    readonly remote: pulumi.Input<string>;
    /** This host's underlay address (`local`). */
    readonly local: pulumi.Input<string>;
    /** FOU port of the peer (`encap-dport`). */
    readonly port: number;
    /** Outer TTL; default 255 as in the guide. */
    readonly ttl?: number;
    readonly dependsOn?: pulumi.Resource[];
}

export interface LinkSettings {
    readonly ifname: string;
    readonly remote: string;
    readonly local: string;
    readonly device: string;
    readonly port: number;
    readonly ttl: number;
}

/**
 * `ip link add ftok2 type ipip remote R local L ttl 255 dev eth0 encap fou encap-sport auto
 * encap-dport 5555` then `ip link set ftok2 up`; delete is `ip link del ftok2`. A leftover ipip
 * link of the same name is replaced; a different kind of interface with that name is an error.
 */
export function ipipFouLinkScripts(s: LinkSettings): CommandScripts {
    const exists = sh`ip link show dev ${s.ifname} >/dev/null 2>&1`;
    return {
        create: script(
            `if ${exists}; then`,
            `  if ${sh`ip -d link show dev ${s.ifname}`} | grep -qw ipip; then ${sh`ip link del dev ${s.ifname}`}; else`,
            `    echo ${sh`fou-tunnel: interface ${s.ifname} already exists and is not an ipip tunnel; choose another name`} >&2; exit 1`,
            "  fi",
            "fi",
            sh`ip link add ${s.ifname} type ipip remote ${s.remote} local ${s.local} ttl ${s.ttl} dev ${s.device} encap fou encap-sport auto encap-dport ${s.port}`,
            sh`ip link set dev ${s.ifname} up`,
            sh`echo "mtu=$(cat /sys/class/net/${s.ifname}/mtu)"`,
            printInstanceId,
        ),
        delete: script(`if ${exists}; then ${sh`ip link del dev ${s.ifname}`}; fi`),
    };
}

/** One end of an IPIP tunnel whose packets travel in FOU (UDP) to the peer's port. */
export class IpipFouLink extends pulumi.ComponentResource {
    public readonly ifname: string;
    /** `mtu=<n>` and an instance id; dependants list it in their triggers. */
    public readonly instance: pulumi.Output<string>;
    /** The MTU the kernel gave the tunnel (1472 on a 1500 underlay). */
    public readonly mtu: pulumi.Output<number>;
    public readonly command: command.remote.Command;

    constructor(name: string, args: IpipFouLinkArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const ttl = args.ttl ?? 255;
        throwIfInvalid([
            checkIfname(`IpipFouLink ${name}: ifname`, args.ifname),
            checkPort(`IpipFouLink ${name}: port`, args.port),
            checkInt(`IpipFouLink ${name}: ttl`, ttl, 1, 255),
        ]);
        super("fou:index:IpipFouLink", name, {}, opts);
        this.ifname = args.ifname;
        const settings = pulumi
            .all([args.remote, args.local, args.host.device])
            .apply(([remote, local, device]) => {
                throwIfInvalid([
                    checkIpv4(`IpipFouLink ${name}: remote`, remote),
                    checkIpv4(`IpipFouLink ${name}: local`, local),
                    checkIfname(`IpipFouLink ${name}: device`, device),
                ]);
                return { ifname: args.ifname, remote, local, device, port: args.port, ttl };
            });
        this.command = hostCommand(
            `${name}-link`,
            {
                host: args.host,
                scripts: settings.apply(ipipFouLinkScripts),
                triggers: [settings.apply((s) => JSON.stringify(s))],
            },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.instance = this.command.stdout;
        this.mtu = this.command.stdout.apply((out) => Number(/^mtu=(\d+)$/m.exec(out)?.[1] ?? NaN));
        this.registerOutputs({ ifname: this.ifname, instance: this.instance, mtu: this.mtu });
    }
}
