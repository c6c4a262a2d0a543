import type { LinkSettings } from "./ipipFouLink";
import { sh } from "./shell";
import { TUNNEL_OPTION_DEFAULTS, isEncap, isProtocol, linkKind } from "../lib/vocabulary";

/** What the `ip link add` line is made of: a link's settings, the device optional. */
export type LinkAddSettings = Omit<LinkSettings, "device" | "looseRpFilter"> & { readonly device?: string };

/**
 * The `ip link add` line of a tunnel end. Protocol, encap and `auto` are checked words from a
 * fixed set, written bare as in the guide; every other value is quoted. Without a device the
 * tunnel is bound to none (a far end's line, components/farEnd.ts). Over an IPv6 underlay the
 * link is ip6tnl or ip6gre: `type ip6tnl mode ipip6 remote R local L hoplimit 255 encaplimit none
 * dev eth0 encap fou … encap-udp6-csum`. The TTL is the hop limit; no encapsulation-limit option
 * (RFC 2473), so the UDP header follows the IPv6 header as in any UDP packet (firewalls, tcpdump's
 * `udp port P`) and the MTU is 8 bytes larger; the checksum flag is always written, as the
 * kernel's default (on) would otherwise decide.
 */
export function linkAddCommand(s: LinkAddSettings): string {
    const protocol = s.protocol ?? TUNNEL_OPTION_DEFAULTS.protocol;
    const encap = s.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
    if (!isProtocol(protocol) || !isEncap(encap)) {
        throw new Error(`unknown tunnel protocol ${JSON.stringify(protocol)} or encap ${JSON.stringify(encap)}`);
    }
    const sport = s.sport === undefined || s.sport === "auto" ? "auto" : sh`${s.sport}`;
    if (s.underlay === 6) {
        const kind = linkKind(protocol, 6);
        return (
            sh`ip link add ${s.ifname} type ` +
            kind.type +
            (kind.mode === undefined ? "" : ` mode ${kind.mode}`) +
            sh` remote ${s.remote} local ${s.local} hoplimit ${s.ttl}` +
            " encaplimit none" +
            (s.device === undefined ? "" : sh` dev ${s.device}`) +
            ` encap ${encap} encap-sport ${sport}` +
            sh` encap-dport ${s.port}` +
            (s.csum ? " encap-udp6-csum" : " noencap-udp6-csum")
        );
    }
    return (
        sh`ip link add ${s.ifname} type ` +
        protocol +
        sh` remote ${s.remote} local ${s.local} ttl ${s.ttl}` +
        (s.device === undefined ? "" : sh` dev ${s.device}`) +
        " encap " +
        encap +
        ` encap-sport ${sport}` +
        sh` encap-dport ${s.port}` +
        (s.csum ? " encap-csum" : "")
    );
}
