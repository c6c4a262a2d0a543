import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand } from "./hostState";
import { linkAddCommand } from "./linkCommand";
import { contains, fileHolds, sh, shq, someLineStarts } from "./shell";
import { Family, canonicalIp, checkUnderlay } from "../lib/inet";
import { checkIfname, throwIfInvalid } from "../lib/validate";
import { Encap, TUNNEL_OPTION_DEFAULTS, TunnelProtocol, linkKind, linkKindText, problemText, tunnelOptionProblems } from "../lib/vocabulary";

export { linkAddCommand };

/** How a tunnel is built, beyond its ends and port; shared by IpipFouLink and FouTunnel. */
export interface TunnelOptions {
    /** `ipip` (default, the guide), `sit` or `gre`. */
    readonly protocol?: TunnelProtocol;
    /** `fou` (default) or `gue`, matching the peer's port. */
    readonly encap?: Encap;
    /** `encap-sport`: a fixed source port, or "auto" (default: a hash of the inner flow). */
    readonly sport?: number | "auto";
    /**
     * UDP checksums on the outer packets (`encap-csum`; over IPv6 `encap-udp6-csum`). Default off
     * over IPv4, as the guide; on over IPv6, which allows zero-checksum UDP only when asked for
     * (RFC 6936): false there sends none (`noencap-udp6-csum`), which Linux's FOU and GUE ports accept.
     */
    readonly csum?: boolean;
    /** Tunnel MTU; default the kernel's (underlay MTU minus the headers). */
    readonly mtu?: number;
    /** Outer TTL (the hop limit over IPv6); default 255 as in the guide. */
    readonly ttl?: number;
    /**
     * The underlay's family, of both ends' addresses: 6 builds ip6tnl (ipip: mode ipip6; sit:
     * ip6ip6) or ip6gre links and `-6` ports, and `csum` sets `encap-udp6-csum`. Default 4.
     */
    readonly underlay?: Family;
}

export interface IpipFouLinkArgs extends TunnelOptions {
    readonly host: TunnelHost;
    /** Interface name, at most 15 characters (the guide's `ftok2`). */
    readonly ifname: string;
    /** The peer's underlay address (`remote`). */
    readonly remote: pulumi.Input<string>;
    /** This host's underlay address (`local`). */
    readonly local: pulumi.Input<string>;
    /** FOU port of the peer (`encap-dport`). */
    readonly port: number;
    /**
     * Loose reverse-path filtering on the link (`net.ipv4.conf.<if>.rp_filter = 2`): needed when
     * packets from routed prefixes arrive through it, whose sources strict filtering would drop.
     * The setting goes with the interface.
     */
    readonly looseRpFilter?: boolean;
    readonly dependsOn?: pulumi.Resource[];
}

export interface LinkSettings {
    readonly ifname: string;
    readonly remote: string;
    readonly local: string;
    readonly device: string;
    readonly port: number;
    readonly ttl: number;
    readonly protocol?: TunnelProtocol;
    readonly encap?: Encap;
    readonly sport?: number | "auto";
    readonly csum?: boolean;
    readonly mtu?: number;
    readonly looseRpFilter?: boolean;
    /** 6: remote and local are IPv6 (ip6tnl, ip6gre); absent: IPv4. */
    readonly underlay?: 6;
}

/**
 * A link's trigger: its settings as JSON. Stacks hold this text, and a changed one replaces the
 * link, so it keeps the keys and order they hold: the protocol goes under the key `mode`.
 */
export function linkTrigger(s: LinkSettings): string {
    const { ifname, remote, local, device, port, ttl, protocol, ...options } = s;
    return JSON.stringify({ ifname, remote, local, device, port, ttl, ...(protocol === undefined ? {} : { mode: protocol }), ...options });
}

/**
 * `ip link add ftok2 type ipip remote R local L ttl 255 dev eth0 encap fou encap-sport auto
 * encap-dport 5555` then `ip link set ftok2 up`; remove is `ip link del ftok2`. Other protocols
 * and options change only that line (`type sit`, `encap gue`, `encap-sport 5600`, `encap-csum`,
 * `ip link set ftok2 mtu 1400`). A link that already is exactly this one is kept as it is (it
 * may be carrying traffic); a tunnel of the same name and kind but other settings is replaced;
 * any other interface with that name is an error.
 */
export function ipipFouLinkObject(s: LinkSettings): HostObject {
    const protocol = s.protocol ?? TUNNEL_OPTION_DEFAULTS.protocol;
    const kind = linkKind(protocol, s.underlay ?? 4);
    const named = linkKindText(kind);
    const exists = sh`ip link show dev ${s.ifname} >/dev/null 2>&1`;
    // `ip -d link show` names the kind first on a line of its own: "    ipip any remote …", "    ip6tnl ipip6 …".
    const sameKind = someLineStarts(sh`ip -d link show dev ${s.ifname}`, [kind.type]);
    return {
        apply: [
            `if ${exists}; then`,
            `  if ${sameKind}; then ${sh`ip link del dev ${s.ifname}`}; else`,
            `    echo ${shq(`fou-tunnel: interface ${s.ifname} already exists and is not a ${kind.type} tunnel; choose another name`)} >&2; exit 1`,
            "  fi",
            "fi",
            // The kernel keeps one tunnel of a kind per pair of addresses (and device); a second
            // `ip link add` fails with a bare "File exists". Say which interface holds the pair.
            // "7: ftok3@eth0: <…> … ipip remote R local L …": the name is between "N: " and "@" or ":".
            "other=$(" + sh`ip -o -d link show type ${kind.type} 2>/dev/null` + " | while IFS= read -r l; do",
            `  case $l in *${shq(` remote ${s.remote} local ${s.local} `)}*) n=\${l#*: }; n=\${n%%[@:]*}` +
                sh`; if [ "$n" != ${s.ifname} ]; then printf '%s\n' "$n"; break; fi ;; esac`,
            "done || true)",
            'if [ -n "$other" ]; then',
            sh`  printf 'fou-tunnel: %s: %s tunnel %s already joins %s to %s; the kernel takes one %s tunnel per pair of addresses: remove it, or carry this tunnel as another protocol\\n' "$(hostname)" ${kind.type} "$other" ${s.local} ${s.remote} ${kind.type} >&2; exit 1`,
            "fi",
            linkAddCommand(s),
            s.mtu === undefined ? sh`ip link set dev ${s.ifname} up` : sh`ip link set dev ${s.ifname} mtu ${s.mtu} up`,
            ...(s.looseRpFilter ? [sh`sysctl -q -w ${`net/ipv4/conf/${s.ifname}/rp_filter=2`}`] : []),
        ].join("\n"),
        check: [
            sh`d=$(ip -d link show dev ${s.ifname} 2>/dev/null) || { echo ${`link ${s.ifname} is missing`}; exit 1; }`,
            'd1=${d%%"\n"*}',
            expect(someLineStarts(`printf '%s\n' "$d"`, named.split(" ")), `link ${s.ifname} is not a ${named} tunnel`),
            ...linkChecks(s),
            expect(contains('"$d1"', "<UP,", ",UP,", ",UP>", "<UP>"), `link ${s.ifname} is down`),
            ...(s.mtu === undefined ? [] : [expect(contains('"$d1"', ` mtu ${s.mtu} `), `link ${s.ifname} has not mtu ${s.mtu}`)]),
            ...(s.looseRpFilter
                ? [expect(fileHolds(`/proc/sys/net/ipv4/conf/${s.ifname}/rp_filter`, 2), `link ${s.ifname} has not rp_filter 2 (loose)`)]
                : []),
        ].join("\n"),
        remove: `if ${exists}; then ${sh`ip link del dev ${s.ifname}`}; fi`,
        // An interface name is the host's: another stack's or tool's link of that name is refused.
        exclusive: { key: `link-${s.ifname}`, present: exists, what: `interface ${s.ifname}` },
        report: sh`read -r mtu < /sys/class/net/${s.ifname}/mtu; echo "mtu=$mtu"`,
    };
}

/**
 * The link's ends and encapsulation as `ip -d link show` prints them (text in $d). IPv4 kinds
 * print ` remote R local L dev D ttl T `, then the encap and `[no]encap-csum`; ip6tnl and ip6gre
 * ` remote R local L dev D hoplimit T encaplimit none `, then the encap, `[no]encap-csum` (the
 * IPv4 flag, unused) and `[no]encap-csum6`, the one that holds.
 */
function linkChecks(s: LinkSettings): string[] {
    const encap = s.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
    const sport = s.sport === undefined || s.sport === "auto" ? "auto" : String(s.sport);
    const has = (text: string) => contains('"$d"', text);
    const encapLine = ` encap ${encap} encap-sport ${sport} encap-dport ${s.port} `;
    if (s.underlay === 6) {
        const ends = ` remote ${s.remote} local ${s.local} dev ${s.device} hoplimit ${s.ttl} encaplimit none `;
        const csum = s.csum ? " encap-csum6 " : " noencap-csum6 ";
        return [
            expect(has(ends), `link ${s.ifname} is not${ends}`),
            expect(has(encapLine), `link ${s.ifname} is not${encapLine}`),
            expect(has(csum), `link ${s.ifname} is not${csum}`),
        ];
    }
    const ends = ` remote ${s.remote} local ${s.local} dev ${s.device} ttl ${s.ttl} `;
    const encapCsum = `${encapLine}${s.csum ? "encap-csum" : "noencap-csum"} `;
    return [expect(has(ends), `link ${s.ifname} is not${ends}`), expect(has(encapCsum), `link ${s.ifname} is not${encapCsum}`)];
}

/** One end of an IPIP (or sit, or GRE) tunnel whose packets travel in UDP to the peer's port. */
export class IpipFouLink extends pulumi.ComponentResource {
    public readonly ifname: string;
    /** Changes whenever the link is rebuilt; dependants list it in their triggers. */
    public readonly instance: pulumi.Output<string>;
    /** The MTU the tunnel has (the kernel's 1472 for IPIP over FOU on a 1500 underlay). */
    public readonly mtu: pulumi.Output<number>;
    /** The link's apply steps with resolved values, for a boot unit to replay. */
    public readonly applyScript: pulumi.Output<string>;
    public readonly command: command.remote.Command;

    constructor(name: string, args: IpipFouLinkArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const ttl = args.ttl ?? TUNNEL_OPTION_DEFAULTS.ttl;
        const protocol = args.protocol ?? TUNNEL_OPTION_DEFAULTS.protocol;
        const encap = args.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
        const sport = args.sport ?? TUNNEL_OPTION_DEFAULTS.sport;
        const underlay = args.underlay ?? 4;
        throwIfInvalid([
            checkIfname(`IpipFouLink ${name}: ifname`, args.ifname),
            ...tunnelOptionProblems({ protocol, encap, port: args.port, sport, mtu: args.mtu, ttl }, (f) => `IpipFouLink ${name}: ${f}`).map(problemText),
        ]);
        super("fou:index:IpipFouLink", name, {}, opts);
        this.ifname = args.ifname;
        const settings = pulumi.all([args.remote, args.local, args.host.device]).apply(([remote, local, device]): LinkSettings => {
            throwIfInvalid([
                checkUnderlay(`IpipFouLink ${name}: remote`, remote, underlay),
                checkUnderlay(`IpipFouLink ${name}: local`, local, underlay),
                checkIfname(`IpipFouLink ${name}: device`, device),
            ]);
            // Options at their defaults are left out, so the guide's tunnel keeps its triggers.
            // Addresses as `ip` prints them (IPv6 compressed, lower case), for the check.
            return {
                ifname: args.ifname,
                remote: canonicalIp(remote),
                local: canonicalIp(local),
                device,
                port: args.port,
                ttl,
                ...(protocol === "ipip" ? {} : { protocol }),
                ...(encap === "fou" ? {} : { encap }),
                ...(sport === "auto" ? {} : { sport }),
                ...((args.csum ?? underlay === 6) ? { csum: true } : {}),
                ...(args.mtu === undefined ? {} : { mtu: args.mtu }),
                ...(args.looseRpFilter ? { looseRpFilter: true } : {}),
                ...(underlay === 6 ? { underlay } : {}),
            };
        });
        const object = settings.apply(ipipFouLinkObject);
        const step = objectCommand(
            `${name}-link`,
            { host: args.host, object, triggers: [settings.apply(linkTrigger)], what: `link ${args.ifname}` },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.command = step.command;
        this.applyScript = object.apply((o) => o.apply);
        this.instance = step.instance;
        this.mtu = this.command.stdout.apply((out) => Number(/^mtu=(\d+)$/m.exec(out)?.[1] ?? NaN));
        this.registerOutputs({ ifname: this.ifname, instance: this.instance, mtu: this.mtu });
    }
}
