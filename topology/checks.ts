import { Cidr, Ip, cidrContains, formatCidr, formatIp } from "../lib/inet";
import { linkKind } from "../lib/vocabulary";
import type { PortTable } from "./ports";
import { TunnelRec, endLabel } from "./records";
import { Report, YMap } from "./yaml";

/**
 * Step 3, the whole-file checks: what no single value shows. Names, pairs of hosts, interfaces,
 * GWIPs and routes are claimed in file order (`Claims`, called as each tunnel is read), so the
 * second user of something is the one reported, naming the first. Routes against GWIPs and
 * sports against receive ports are checked once all of those are known.
 */
export class Claims {
    private readonly tunnelByName = new Map<string, TunnelRec>();
    /** sorted host names and protocol → the first tunnel */
    private readonly tunnelByPair = new Map<string, TunnelRec>();
    /** host and interface name → tunnel */
    private readonly tunnelByIfname = new Map<string, TunnelRec>();
    /** host and canonical prefix → tunnel routing it */
    private readonly routeOwner = new Map<string, { tunnel: TunnelRec; line: number }>();
    /** gwipKey → where it is used, for messages */
    private readonly gwipOwner = new Map<string, string>();

    constructor(private readonly r: Report) {}

    /**
     * One tunnel per kind of link and pair of hosts (over IPv6, ipip and sit are both ip6tnl);
     * true when this one is a second (reported).
     */
    pair(t: TunnelRec, item: YMap): boolean {
        const protocol = t.fields.protocol?.value;
        if (!t.ends || !protocol) {
            return false;
        }
        const kind = linkKind(protocol, t.underlay);
        const key = `${[t.ends[0].name, t.ends[1].name].sort().join("\0")}\0${kind.type}`;
        const first = this.tunnelByPair.get(key);
        if (!first) {
            this.tunnelByPair.set(key, t);
            return false;
        }
        this.r.add(
            item.entries.get("hosts")!.value.pos,
            `${t.path}.hosts`,
            kind.type === protocol
                ? `${t.ends[0].name} and ${t.ends[1].name} are already joined by ${protocol} tunnel ${first.label} (line ${first.line}); ` +
                      `the kernel tells ${protocol} tunnels apart only by local and remote address, so a pair of hosts can have one tunnel per protocol`
                : `${t.ends[0].name} and ${t.ends[1].name} are already joined by ${first.fields.protocol?.value} tunnel ${first.label} (line ${first.line}), ` +
                      `over IPv6 an ${kind.type} link like this ${protocol} tunnel; the kernel tells ${kind.type} links apart only by local and remote address, ` +
                      `so over IPv6 a pair of hosts can have one ${kind.type} tunnel${kind.type === "ip6tnl" ? " (ipip or sit)" : ""}`,
        );
        return true;
    }

    /** A unique tunnel name, written at `writtenPos` or (undefined) the default; sets t.name when it is free. */
    name(t: TunnelRec, item: YMap, name: string, writtenPos: number | undefined, pairTaken: boolean): void {
        const first = this.tunnelByName.get(name);
        if (!first) {
            this.tunnelByName.set(name, t);
            t.name = name;
            t.label = name;
        } else if (writtenPos !== undefined) {
            this.r.add(writtenPos, `${t.path}.name`, `tunnel name ${name} is already used by ${first.path} (line ${first.line})`);
        } else if (!pairTaken) {
            this.r.add(item.pos, `${t.path}.name`, `the default name ${name} is already the name of ${first.path} (line ${first.line}); set name to tell these tunnels apart`);
        }
    }

    /** Where a GWIP is used already, or undefined when it is free. */
    gwipUser(ip: Ip): string | undefined {
        return this.gwipOwner.get(gwipKey(ip));
    }

    /** Takes a GWIP for end `i` of `t`; `where` says where it was written or which pool it came from. */
    claimGwip(ip: Ip, t: TunnelRec, i: number, where: string): void {
        this.gwipOwner.set(gwipKey(ip), `the GWIP of ${endLabel(t, i)} in tunnel ${t.label} (${where})`);
    }

    /**
     * Interface names unique per host: written at `written` (the list's item positions) or
     * derived (undefined, reported at the tunnel). True when every name was free.
     */
    interfaces(t: TunnelRec, item: YMap, ifnames: [string, string], written: number[] | undefined, pairTaken: boolean): boolean {
        let taken = false;
        ifnames.forEach((ifname, i) => {
            const host = t.ends![i].name;
            const key = `${host}\0${ifname}`;
            const first = this.tunnelByIfname.get(key);
            if (!first) {
                this.tunnelByIfname.set(key, t);
                return;
            }
            taken = true;
            const hint = "; set interfaces to give this tunnel other names";
            if (written) {
                this.r.add(written[i], `${t.path}.interfaces[${i}]`, `interface ${ifname} on ${host} is already used by tunnel ${first.label} (line ${first.line})${hint}`);
            } else if (!pairTaken) {
                this.r.add(item.pos, `${t.path}.interfaces`, `the default interface name ${ifname} on ${host} is already used by tunnel ${first.label} (line ${first.line})${hint}`);
            }
        });
        return !taken;
    }

    /** Each host routes a prefix through one tunnel at most; true when this route is the first. */
    route(t: TunnelRec, host: string, c: Cidr, pos: number, path: string): boolean {
        const key = `${host}\0${formatCidr(c)}`;
        const first = this.routeOwner.get(key);
        if (first) {
            this.r.add(pos, path, `${host} already routes ${formatCidr(c)} into tunnel ${first.tunnel.label} (line ${first.line}); a prefix can go through one tunnel only`);
            return false;
        }
        this.routeOwner.set(key, { tunnel: t, line: this.r.line(pos) });
        return true;
    }
}

function gwipKey(ip: Ip): string {
    return `${ip.family}/${ip.value}`;
}

/** A route must not cover a GWIP of its own tunnel (checked once every GWIP is allocated). */
export function checkRoutesAvoidGwips(r: Report, tunnels: TunnelRec[]): void {
    for (const t of tunnels) {
        for (const route of t.routes.flat()) {
            const covered = t.gwips.flatMap((g, i) => (g && cidrContains(route.cidr, g) ? [`${formatIp(g)} (${endLabel(t, i)})`] : []));
            if (covered.length > 0) {
                r.add(
                    route.pos,
                    route.path,
                    `${formatCidr(route.cidr)} contains ${covered.join(" and ")}, ${covered.length > 1 ? "the GWIPs" : "a GWIP"} of this tunnel; ` +
                        "the GWIPs are reached through the tunnel already, a route must not cover them",
                );
            }
        }
    }
}

/** A fixed sport must not be a receive port of the tunnel's hosts (a rule of this project, see docs). */
export function checkSports(r: Report, tunnels: TunnelRec[], ports: PortTable<TunnelRec>): void {
    for (const t of tunnels) {
        const sport = t.fields.sport;
        if (!t.ends || !sport || sport.value === "auto") {
            continue;
        }
        const value = sport.value;
        const clashes = t.ends.flatMap((h) => {
            const p = ports.get(h.name, value);
            return p ? [`on ${h.name} (tunnel ${p.users[0].label}, line ${p.users[0].line})`] : [];
        });
        if (clashes.length > 0) {
            r.add(
                sport.pos,
                sport.path,
                `${value}${sport.from} is also a receive port ${clashes.join(" and ")}; a fixed sport must differ from every receive port of the tunnel's hosts`,
            );
        }
    }
}
