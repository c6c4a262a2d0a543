import { Ip, formatIp } from "../lib/inet";
import { HostRec, Hosts, TunnelRec, hostNames } from "./records";
import { Report, YMap, got, str } from "./yaml";

/**
 * A tunnel's `hosts`: two different hosts of the file, at most one of them external, whose
 * underlay addresses are of one family (which becomes the tunnel's underlay: 4 when neither
 * address is known, as on aws). Sets `t.ends` and `t.underlay` when they are.
 */
export function tunnelHosts(r: Report, hosts: Hosts, t: TunnelRec, item: YMap): void {
    const e = item.entries.get("hosts");
    if (!e) {
        r.add(item.pos, `${t.path}.hosts`, `required: the two hosts the tunnel joins, like [k1, k2] (the hosts are ${hostNames(hosts)})`);
        return;
    }
    if (e.value.kind !== "seq" || e.value.items.length !== 2) {
        r.add(e.value.pos, `${t.path}.hosts`, `must be a list of the two hosts the tunnel joins, like [k1, k2] (got ${got(e.value)})`);
        return;
    }
    const ends = e.value.items.map((n, i) => {
        const s = str(n);
        const h = s === undefined ? undefined : hosts.byName.get(s);
        if (!h && !hosts.broken && !(s !== undefined && hosts.written.has(s))) {
            r.add(n.pos, `${t.path}.hosts[${i}]`, `unknown host ${got(n)}; the hosts are ${hostNames(hosts)}`);
        }
        return h;
    });
    if (ends[0] && ends[1]) {
        if (ends[0] === ends[1]) {
            r.add(e.value.pos, `${t.path}.hosts`, `joins ${ends[0].name} to itself; a tunnel joins two different hosts`);
        } else if (ends[0].external && ends[1].external) {
            r.add(
                e.value.pos,
                `${t.path}.hosts`,
                `joins two external hosts, ${ends[0].name} and ${ends[1].name}; the stack builds only the ends on hosts it manages, so one end must be one of those`,
            );
        } else {
            const [u0, u1] = [underlayOf(ends[0]), underlayOf(ends[1])];
            if (u0 && u1 && u0.family !== u1.family) {
                r.add(
                    e.value.pos,
                    `${t.path}.hosts`,
                    `joins ${ends[0].name} (${formatIp(u0)}) to ${ends[1].name} (${formatIp(u1)}): one underlay address is IPv${u0.family} and the other IPv${u1.family}; ` +
                        "a tunnel's packets go from one end's address to the other's, so both must be of one family: give both hosts an underlay address of the same family",
                );
            } else {
                t.ends = [ends[0], ends[1]];
                t.underlay = u0?.family ?? u1?.family ?? 4;
            }
        }
    }
}

/** The address a host's tunnels are sent to and from: a local VM's IPv6 one when given, else its address. */
function underlayOf(h: HostRec): Ip | undefined {
    return h.underlay ?? h.address;
}

