import { cidrContains, formatIp, notUnicast, parseIp } from "../lib/inet";
import { checkIfname } from "../lib/validate";
import { defaultIfname, innerFamily, tunnelOptionProblems } from "../lib/vocabulary";
import type { Claims } from "./checks";
import { TUNNEL_DEFAULTS } from "./defaults";
import { defaultTunnelName, TunnelValues } from "./model";
import { Context, Hosts, TunnelRec } from "./records";
import { tunnelHosts } from "./tunnelHosts";
import { Defaults, Field, READ, TUNNEL_KEYS, TUNNEL_NAME, VALUE_KEYS, ValueKey, checkKeys, readRoute } from "./schema";
import { YMap, child, got, str } from "./yaml";

/** What reading a tunnel needs from the steps before it. */
interface Known {
    readonly cx: Context;
    readonly hosts: Hosts;
    readonly defaults: Defaults;
    readonly claims: Claims;
}

/**
 * The tunnels section: each tunnel's keys read in turn (its hosts, values, name, GWIPs,
 * interfaces, routes), each claiming what must be unique in the file as it goes (checks.ts).
 * GWIPs not given are allocated afterwards (gwips.ts).
 */
export function readTunnels(cx: Context, hosts: Hosts, defaults: Defaults, claims: Claims): TunnelRec[] {
    const { r, root } = cx;
    const s: Known = { cx, hosts, defaults, claims };
    const tunnels: TunnelRec[] = [];
    const e = root.entries.get("tunnels");
    if (!e) {
        r.add(root.pos, "tunnels", "required: a list of at least 1 tunnel, each like {hosts: [k1, k2]}");
        return tunnels;
    }
    if (e.value.kind !== "seq" || e.value.items.length === 0) {
        r.add(e.value.pos, "tunnels", `must be a non-empty list of tunnels, each like {hosts: [k1, k2]} (got ${got(e.value)})`);
        return tunnels;
    }
    e.value.items.forEach((item, index) => {
        const path = `tunnels[${index}]`;
        if (item.kind !== "map") {
            r.add(item.pos, path, `must be a mapping like {hosts: [k1, k2]} (got ${got(item)})`);
            return;
        }
        const t: TunnelRec = {
            index,
            path,
            pos: item.pos,
            line: r.line(item.pos),
            label: path,
            fields: {},
            gwips: [undefined, undefined],
            gwipsGiven: item.entries.has("gwips"),
            routes: [[], []],
        };
        tunnels.push(t);
        checkKeys(r, item, path, "tunnel", TUNNEL_KEYS);
        tunnelHosts(cx.r, hosts, t, item);
        tunnelValues(s, t, item);
        tunnelFarEnd(s, t);
        // A second tunnel of a pair and protocol also repeats the first one's default name and
        // interfaces: only the pair is reported.
        const pairTaken = claims.pair(t, item);
        tunnelName(s, t, item, pairTaken);
        tunnelGwips(s, t, item);
        tunnelInterfaces(s, t, item, pairTaken);
        tunnelRoutes(s, t, item);
    });
    return tunnels;
}

/** Each value from the tunnel, else defaults, else built in. */
function tunnelValues({ cx: { r }, defaults }: Known, t: TunnelRec, item: YMap): void {
    const field = <K extends ValueKey>(k: K): Field<TunnelValues[K]> | undefined => {
        const path = `${t.path}.${k}`;
        const e = item.entries.get(k);
        if (e) {
            const res = READ[k](e.value, path);
            if ("error" in res) {
                r.add(e.value.pos, path, res.error);
                return undefined;
            }
            return { value: res.value, pos: e.value.pos, path, from: "" };
        }
        const d = defaults[k];
        if (d) {
            return { value: d.value, pos: item.pos, path, from: ` (from defaults.${k}, line ${d.line})` };
        }
        return { value: TUNNEL_DEFAULTS[k], pos: item.pos, path, from: "" };
    };
    const fields = t.fields as Record<ValueKey, Field<unknown> | undefined>;
    for (const k of VALUE_KEYS) {
        fields[k] = field(k);
    }
    // Over IPv6, UDP checksums are on unless the file turns them off (RFC 6936).
    if (t.underlay === 6 && !item.entries.has("csum") && !defaults.csum) {
        fields.csum = { value: true, pos: item.pos, path: `${t.path}.csum`, from: " (the default over an IPv6 underlay)" };
    }
    const protocol = t.fields.protocol?.value;
    t.family = protocol ? innerFamily(protocol) : undefined;
    // Each value passed its own rule as it was read; what is left is the MTU's bound for the protocol.
    const mtu = t.fields.mtu;
    if (protocol && mtu && mtu.value !== undefined) {
        for (const p of tunnelOptionProblems({ protocol, mtu: mtu.value }, () => mtu.path, () => `${mtu.value}${mtu.from}`)) {
            r.add(mtu.pos, p.path, p.message);
        }
    }
}

/**
 * The options a far end could not be given as declared: UDP checksums (`encap-csum`) have no
 * setting in systemd-networkd's [Tunnel] section, so its files could not match the ip lines.
 */
function tunnelFarEnd({ cx: { r } }: Known, t: TunnelRec): void {
    const far = t.ends?.find((h) => h.external);
    const csum = t.fields.csum;
    // Over IPv6 a far end has no networkd files (farEnd.ts): its ip lines take the checksum flag.
    if (far && csum?.value && t.underlay !== 6) {
        r.add(
            csum.pos,
            csum.path,
            `true${csum.from} cannot apply to external host ${far.name}: systemd-networkd has no setting for FOU checksums (encap-csum), ` +
                "so the far end's networkd files could not match; leave csum false on tunnels to external hosts",
        );
    }
}

function tunnelName({ cx: { r }, claims }: Known, t: TunnelRec, item: YMap, pairTaken: boolean): void {
    const e = item.entries.get("name");
    if (e) {
        const s = str(e.value);
        if (s === undefined || !TUNNEL_NAME.test(s)) {
            r.add(e.value.pos, `${t.path}.name`, `must be 1-31 characters of a-z, 0-9 and '-', starting with a letter (got ${got(e.value)})`);
            return;
        }
        claims.name(t, item, s, e.value.pos, pairTaken);
    } else if (t.ends) {
        claims.name(t, item, defaultTunnelName(t.ends[0].name, t.ends[1].name), undefined, pairTaken);
    }
}

/** Explicit GWIPs, claimed as they are read; the others are allocated once all are known. */
function tunnelGwips({ cx: { r, underlay, underlayText, hostAddresses }, claims }: Known, t: TunnelRec, item: YMap): void {
    const e = item.entries.get("gwips");
    if (!e) {
        return;
    }
    const v = e.value;
    const like = t.family === 6 ? "[fd00:10:10:10::1, fd00:10:10:10::2]" : "[10.10.10.1, 10.10.10.2]";
    if (v.kind !== "seq" || v.items.length !== 2) {
        r.add(v.pos, `${t.path}.gwips`, `must be a list of two GWIPs, one per host in the order of hosts, like ${like} (got ${got(v)})`);
        return;
    }
    const protocol = t.fields.protocol?.value;
    v.items.forEach((n, i) => {
        const path = `${t.path}.gwips[${i}]`;
        const ip = parseIp(str(n));
        if (!ip) {
            r.add(n.pos, path, `must be an ${t.family === 6 ? "IPv6" : t.family === 4 ? "IPv4" : "IP"} address (got ${got(n)})`);
            return;
        }
        const a = formatIp(ip);
        const special = notUnicast(ip);
        const first = claims.gwipUser(ip);
        const machine = hostAddresses.find((h) => h.ip.family === ip.family && h.ip.value === ip.value);
        const bad =
            t.family !== undefined && ip.family !== t.family
                ? `${protocol === "ipip" ? "an" : "a"} ${protocol} tunnel carries IPv${t.family}, so its GWIPs are IPv${t.family} addresses ` +
                  `like ${t.family === 6 ? "fd00:10:10:10::1" : "10.10.10.1"} (got ${a})`
                : special
                  ? `${a} is ${special}; a GWIP must be a unicast address`
                  : underlay && cidrContains(underlay, ip)
                    ? `${a} lies in the underlay network ${underlayText}; GWIPs must be outside it`
                    : machine
                      ? `${a} is ${machine.what}; a GWIP must not be a machine's own address`
                      : i === 1 && t.gwips[0]?.value === ip.value
                        ? `${a} is also the GWIP of the other end (gwips[0]); each end needs its own`
                        : first
                          ? `GWIP ${a} is already ${first}; each GWIP may be used once in the file`
                          : undefined;
        if (bad) {
            r.add(n.pos, path, bad);
            return;
        }
        claims.claimGwip(ip, t, i, `line ${r.line(n.pos)}`);
        t.gwips[i] = ip;
    });
}

function tunnelInterfaces({ cx: { r }, claims }: Known, t: TunnelRec, item: YMap, pairTaken: boolean): void {
    const e = item.entries.get("interfaces");
    let ifnames: [string, string] | undefined;
    let written: number[] | undefined;
    if (e) {
        const v = e.value;
        if (v.kind !== "seq" || v.items.length !== 2) {
            r.add(v.pos, `${t.path}.interfaces`, `must be a list of two interface names, one per host in the order of hosts, like [ftok2, ftok1] (got ${got(v)})`);
            return;
        }
        const ok = v.items.map((n, i) => {
            const path = `${t.path}.interfaces[${i}]`;
            const s = n.kind === "scalar" ? n.value : got(n);
            if (!r.check(n.pos, path, checkIfname(path, s))) {
                return false;
            }
            if (s === "lo") {
                r.add(n.pos, path, "lo is the loopback interface; choose another name");
                return false;
            }
            return true;
        });
        if (ok[0] && ok[1]) {
            ifnames = [str(v.items[0])!, str(v.items[1])!];
            written = v.items.map((n) => n.pos);
        }
    } else if (t.ends) {
        // fto<peer>: 3 + at most 12 characters (checkHostName), so always valid; checked all the same.
        const derived: [string, string] = [defaultIfname(t.ends[1].name), defaultIfname(t.ends[0].name)];
        const ok = derived.map((d) => r.check(item.pos, `${t.path}.interfaces`, checkIfname(`${t.path}.interfaces`, d)));
        if (ok[0] && ok[1]) {
            ifnames = derived;
        }
    }
    if (ifnames && t.ends && claims.interfaces(t, item, ifnames, written, pairTaken)) {
        t.ifnames = ifnames;
    }
}

/** Routes as written; whether they cover a GWIP is checked once all GWIPs are known. */
function tunnelRoutes({ cx: { r, underlay, underlayText, hostAddresses }, claims }: Known, t: TunnelRec, item: YMap): void {
    const e = item.entries.get("routes");
    if (!e) {
        return;
    }
    const ends = t.ends ? `${t.ends[0].name}, ${t.ends[1].name}` : "the tunnel's hosts";
    if (e.value.kind !== "map") {
        r.add(e.value.pos, `${t.path}.routes`, `must be a mapping from this tunnel's hosts (${ends}) to lists of prefixes, like {k1: [10.20.2.0/24]} (got ${got(e.value)})`);
        return;
    }
    for (const [host, list] of e.value.entries) {
        const path = child(`${t.path}.routes`, host);
        const end = t.ends?.findIndex((h) => h.name === host);
        if (end === -1) {
            r.add(list.keyPos, path, `${host} is not a host of this tunnel; routes are keyed by its hosts ${ends}`);
        }
        if (list.value.kind !== "seq") {
            r.add(list.value.pos, path, `must be a list of prefixes that ${host} routes into the tunnel, like [10.20.2.0/24] (got ${got(list.value)})`);
            continue;
        }
        list.value.items.forEach((n, j) => {
            const rp = `${path}[${j}]`;
            const c = readRoute(r, n, rp, t.family, underlay, underlayText, hostAddresses);
            if (c && end !== undefined && end >= 0 && claims.route(t, host, c, n.pos, rp)) {
                t.routes[end].push({ cidr: c, pos: n.pos, path: rp });
            }
        });
    }
}
