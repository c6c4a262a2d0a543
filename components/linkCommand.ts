import type { LinkSettings } from "./ipipFouLink";
import { sh } from "./shell";
import { TUNNEL_OPTION_DEFAULTS, isEncap, isProtocol } from "../lib/vocabulary";

/** What the `ip link add` line is made of: a link's settings, the device optional. */
export type LinkAddSettings = Omit<LinkSettings, "device" | "looseRpFilter"> & { readonly device?: string };

/**
 * The `ip link add` line of a tunnel end. Protocol, encap and `auto` are checked words from a
 * fixed set, written bare as in the guide; every other value is quoted. Without a device the
 * tunnel is bound to none (a far end's line, components/farEnd.ts).
 */
export function linkAddCommand(s: LinkAddSettings): string {
    const protocol = s.protocol ?? TUNNEL_OPTION_DEFAULTS.protocol;
    const encap = s.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
    if (!isProtocol(protocol) || !isEncap(encap)) {
        throw new Error(`unknown tunnel protocol ${JSON.stringify(protocol)} or encap ${JSON.stringify(encap)}`);
    }
    const sport = s.sport === undefined || s.sport === "auto" ? "auto" : sh`${s.sport}`;
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
