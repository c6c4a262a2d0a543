import { familyOf, hostPrefix } from "../lib/inet";
import { IPPROTO, MODULES, TunnelProtocol, innerFamily, tunnelModules } from "../lib/vocabulary";
import { linkAddCommand } from "./linkCommand";
import { sh } from "./shell";
import type { TopologySpec, TunnelEndSpec, TunnelSpec } from "./topologySpec";

/**
 * What the operator of a far end (a host of `externalHosts`, which the stack never logs in to)
 * must make for its tunnels to work: the managed ends' commands mirrored for its side, once as
 * `ip` lines and once as systemd-networkd files. Pure: plain data from the topology, known before
 * anything is built.
 */
export interface FarEndSetup {
    /** Its underlay address: `local` of its tunnels, and where the managed ends send them. */
    readonly address: string;
    /** The tunnels ending on it, in topology order. */
    readonly tunnels: string[];
    /**
     * The commands, one a line, to run as root in order (`sh -e`): modules, forwarding when a
     * tunnel carries routed prefixes, each receive port, then per tunnel the link, its GWIP and
     * routes. Every value is quoted (components/shell.ts).
     */
    readonly commands: string[];
    /**
     * What takes the far end's part down again, once the stack's ends are gone: each link (its
     * GWIP and routes go with it), then each receive port. Modules and sysctls stay as they are:
     * other things of the host may use them.
     */
    readonly undo: string[];
    /**
     * The same as files, path → content: a `.netdev` per receive port (`Kind=fou`) and per tunnel
     * (`Kind=ipip|sit|gre` over FOU or GUE), a `.network` per tunnel (GWIP, routes), the modules
     * to load at boot, and the sysctls when a tunnel carries routed prefixes. Made by
     * systemd-networkd (version 235 or later: `Independent=`) after `systemctl restart systemd-networkd`.
     * Empty for a far end over an IPv6 underlay: see `note`.
     */
    readonly networkd: Record<string, string>;
    /** Why `networkd` is empty, when it is: networkd's ip6tnl and ip6gre netdevs take no FOU or GUE encapsulation. */
    readonly note?: string;
}

/** The note of a far end over IPv6, whose tunnels systemd-networkd cannot make. */
export const NO_NETWORKD_OVER_IPV6 =
    "no systemd-networkd files: networkd's ip6tnl and ip6gre netdevs take no FOU or GUE encapsulation (systemd 252), so these tunnels are made with the commands (at boot, from a unit that runs them)";

/** Where systemd-networkd reads its files; the project's begin with `60-fou-tunnel-`. */
export const NETWORKD_DIR = "/etc/systemd/network";
const PREFIX = `${NETWORKD_DIR}/60-fou-tunnel-`;
const MODULES_FILE = "/etc/modules-load.d/fou-tunnel.conf";
const SYSCTL_FILE = "/etc/sysctl.d/60-fou-tunnel.conf";

/** systemd-networkd's names of the encapsulations. */
const NETWORKD_ENCAP = { fou: "FooOverUDP", gue: "GenericUDPEncapsulation" } as const;

/** One far end's tunnel, seen from the far end. */
interface FarTunnel {
    readonly t: TunnelSpec;
    readonly self: TunnelEndSpec;
    readonly peer: TunnelEndSpec;
    /** The managed end's underlay address: the far end's `remote`. */
    readonly remote: string;
}

/**
 * For each far end of `spec` (`externalHosts`), what its operator runs. `underlay` gives each
 * managed host's underlay address (the topology model's `address`); a managed peer without one is
 * a programming error (aws stacks have no far ends).
 */
export function farEndSetups(spec: TopologySpec, underlay: Readonly<Record<string, string | undefined>>): Record<string, FarEndSetup> {
    return Object.fromEntries(
        (spec.externalHosts ?? []).map((h) => {
            const tunnels = spec.tunnels.flatMap((t): FarTunnel[] => {
                const i = t.ends.findIndex((e) => e.host === h.name);
                if (i < 0) {
                    return [];
                }
                const peer = t.ends[1 - i];
                const remote = underlay[peer.host];
                if (remote === undefined) {
                    throw new Error(`farEndSetups: no underlay address for ${peer.host}, the peer of ${h.name} in tunnel ${t.name}`);
                }
                return [{ t, self: t.ends[i], peer, remote }];
            });
            const v6 = familyOf(h.address) === 6;
            const setup: FarEndSetup = {
                address: h.address,
                tunnels: tunnels.map((x) => x.t.name),
                commands: farEndCommands(h.address, tunnels),
                undo: farEndUndo(h.address, tunnels),
                networkd: v6 ? {} : farEndNetworkd(h.address, tunnels),
                ...(v6 ? { note: NO_NETWORKD_OVER_IPV6 } : {}),
            };
            return [h.name, setup];
        }),
    );
}

/** One receive port of the far end, shared by its tunnels of one binding (the topology checked there is one per number). */
interface FarPort {
    readonly port: number;
    readonly encap: TunnelSpec["encap"];
    readonly protocol: TunnelProtocol;
}

function portsOf(tunnels: readonly FarTunnel[]): FarPort[] {
    const byNumber = new Map<number, FarPort>();
    for (const { t } of tunnels) {
        if (!byNumber.has(t.port)) byNumber.set(t.port, { port: t.port, encap: t.encap, protocol: t.protocol });
    }
    return [...byNumber.values()].sort((a, b) => a.port - b.port);
}

/** A tunnel carrying routed prefixes (either end's): forwarding, and loose reverse-path filtering on its link, as on the managed end. */
function routed(t: TunnelSpec): boolean {
    return t.ends.some((e) => e.routes.length > 0);
}

/** The forwarding sysctls the far end's routed tunnels need, by inner family. */
function forwarding(tunnels: readonly FarTunnel[]): string[] {
    const families = new Set(tunnels.filter((x) => routed(x.t)).map((x) => innerFamily(x.t.protocol)));
    return [...(families.has(4) ? ["net.ipv4.ip_forward"] : []), ...(families.has(6) ? ["net.ipv6.conf.all.forwarding"] : [])];
}

/** `net/ipv4/conf/<if>/rp_filter`: the slash form, since an interface name may hold dots. */
function rpFilterKey(ifname: string): string {
    return `net/ipv4/conf/${ifname}/rp_filter`;
}

/** The GWIP routes go via on the far end: its own IPv4 GWIP, as the guide's; none for IPv6 (refused). */
function via(x: FarTunnel): string | undefined {
    return innerFamily(x.t.protocol) === 6 ? undefined : x.self.gwip;
}

/**
 * The guide's commands, mirrored for the far end: `modprobe fou` (and the protocol's module),
 * `ip fou add port 5555 ipproto 4`, `ip link add ftok1 type ipip remote <k1> local <far> ttl 255
 * encap fou encap-sport auto encap-dport 5555`, `ip link set dev ftok1 up`, `ip addr add
 * 10.10.10.2/32 dev ftok1`, `ip route add to 10.10.10.1/32 via 10.10.10.2 dev ftok1`, then the
 * far end's routed prefixes. The link is bound to no device (the far end's is unknown).
 */
function farEndCommands(address: string, tunnels: readonly FarTunnel[]): string[] {
    const underlay = familyOf(address) ?? 4;
    const modules = [...new Set(tunnels.flatMap((x) => tunnelModules(x.t.protocol, underlay)))];
    const v6 = underlay === 6 ? " -6" : "";
    return [
        ...modules.map((m) => sh`modprobe ${m}`),
        ...forwarding(tunnels).map((k) => sh`sysctl -w ${`${k}=1`}`),
        ...portsOf(tunnels).map((p) => sh`ip fou add port ${p.port}` + (p.encap === "gue" ? " gue" : sh` ipproto ${IPPROTO[p.protocol]}`) + v6),
        ...tunnels.flatMap((x) => {
            const { t, self, peer } = x;
            const ifname = self.ifname;
            const gw = via(x);
            const route = (to: string) => (gw === undefined ? sh`ip route add to ${hostPrefix(to)} dev ${ifname}` : sh`ip route add to ${hostPrefix(to)} via ${gw} dev ${ifname}`);
            return [
                linkAddCommand({
                    ifname,
                    remote: x.remote,
                    local: address,
                    port: t.port,
                    ttl: t.ttl,
                    protocol: t.protocol,
                    encap: t.encap,
                    sport: t.sport,
                    csum: t.csum,
                    ...(underlay === 6 ? { underlay } : {}),
                }),
                t.mtu === undefined ? sh`ip link set dev ${ifname} up` : sh`ip link set dev ${ifname} mtu ${t.mtu} up`,
                ...(routed(t) ? [sh`sysctl -w ${`${rpFilterKey(ifname)}=2`}`] : []),
                sh`ip addr add ${hostPrefix(self.gwip)} dev ${ifname}`,
                route(peer.gwip),
                ...self.routes.map(route),
            ];
        }),
    ];
}

/** `ip link del dev ftok1` per tunnel, newest first, then `ip fou del port 5555` (`-6` over IPv6) per port. */
function farEndUndo(address: string, tunnels: readonly FarTunnel[]): string[] {
    const v6 = familyOf(address) === 6 ? " -6" : "";
    return [...tunnels.map((x) => sh`ip link del dev ${x.self.ifname}`).reverse(), ...portsOf(tunnels).map((p) => sh`ip fou del port ${p.port}` + v6)];
}

/** An INI-style file of systemd: sections of `Key=value` lines, a blank line between sections. */
function unitFile(comment: string, sections: [string, (string | undefined)[]][]): string {
    return [`# ${comment}`, ...sections.map(([name, lines]) => [`[${name}]`, ...lines.filter((l): l is string => l !== undefined)].join("\n"))].join("\n\n") + "\n";
}

/**
 * systemd-networkd's form of the same: a `.netdev` per receive port (`[NetDev] Kind=fou`,
 * `[FooOverUDP] Port= Protocol=`), per tunnel a `.netdev` (`[Tunnel] Local= Remote= TTL=
 * FooOverUDP=yes FOUDestinationPort= FOUSourcePort=`, `Independent=yes`: bound to no device,
 * like the ip line) and a `.network` (the GWIP, and routes through the link to the peer's GWIP
 * and the routed prefixes: device routes, the same on a point-to-point link as the ip lines' `via`
 * its own GWIP); the modules to load at boot; the sysctls of routed tunnels.
 */
function farEndNetworkd(address: string, tunnels: readonly FarTunnel[]): Record<string, string> {
    const files: Record<string, string> = {};
    const names = tunnels.map((x) => x.t.name).join(", ");
    files[MODULES_FILE] = `# fou-tunnel: the modules of tunnels ${names}\n${[...new Set(tunnels.flatMap((x) => MODULES[x.t.protocol]))].join("\n")}\n`;
    const sysctls = [
        ...forwarding(tunnels).map((k) => `${k} = 1`),
        ...tunnels.filter((x) => routed(x.t)).map((x) => `${rpFilterKey(x.self.ifname)} = 2`),
    ];
    if (sysctls.length > 0) {
        files[SYSCTL_FILE] = `# fou-tunnel: tunnels carrying routed prefixes forward them; their links filter reverse paths loosely\n${sysctls.join("\n")}\n`;
    }
    for (const p of portsOf(tunnels)) {
        const users = tunnels.filter((x) => x.t.port === p.port).map((x) => x.t.name);
        files[`${PREFIX}${p.encap}${p.port}.netdev`] = unitFile(`fou-tunnel: the receive port of tunnels ${users.join(", ")}`, [
            ["NetDev", [`Name=${p.encap}${p.port}`, "Kind=fou"]],
            ["FooOverUDP", [`Encapsulation=${NETWORKD_ENCAP[p.encap]}`, `Port=${p.port}`, p.encap === "gue" ? undefined : `Protocol=${IPPROTO[p.protocol]}`]],
        ]);
    }
    for (const x of tunnels) {
        const { t, self, peer } = x;
        const what = `fou-tunnel: tunnel ${t.name}, ${self.ifname} to ${peer.host} (${x.remote})`;
        files[`${PREFIX}${self.ifname}.netdev`] = unitFile(what, [
            ["NetDev", [`Name=${self.ifname}`, `Kind=${t.protocol}`, t.mtu === undefined ? undefined : `MTUBytes=${t.mtu}`]],
            [
                "Tunnel",
                [
                    "Independent=yes",
                    `Local=${address}`,
                    `Remote=${x.remote}`,
                    `TTL=${t.ttl}`,
                    "FooOverUDP=yes",
                    `Encapsulation=${NETWORKD_ENCAP[t.encap]}`,
                    `FOUDestinationPort=${t.port}`,
                    // auto: no key (networkd 252 refuses FOUSourcePort=0, "Failed to parse port").
                    ...(t.sport === "auto" ? [] : [`FOUSourcePort=${t.sport}`]),
                ],
            ],
        ]);
        files[`${PREFIX}${self.ifname}.network`] = unitFile(what, [
            ["Match", [`Name=${self.ifname}`]],
            ["Network", [`Address=${hostPrefix(self.gwip)}`, "LinkLocalAddressing=no", "IPv6AcceptRA=no"]],
            ...[peer.gwip, ...self.routes].map((to): [string, string[]] => ["Route", [`Destination=${hostPrefix(to)}`]]),
        ]);
    }
    return files;
}
