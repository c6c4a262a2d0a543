import { Encap, IPPROTO, TunnelIpproto, TunnelProtocol, portIpproto } from "../lib/vocabulary";
import type { Family } from "../lib/inet";
import type { PortSpec, TunnelSpec } from "./model";
import type { TunnelRec } from "./records";
import type { Report } from "./yaml";

/**
 * Step 5, port derivation: each host opens one receive port per port number. A FOU port delivers
 * every packet to one inner protocol (ipproto 4, 41 or 47); a GUE port carries any, its header
 * names the protocol. Tunnels that need the same binding on a host share the port.
 */

export interface PortUse<T> {
    readonly host: string;
    readonly port: number;
    readonly encap: Encap;
    /** The inner protocol of a FOU port; undefined for GUE. */
    readonly ipproto?: TunnelIpproto;
    /** The family it listens on: the host's underlay address's. */
    readonly family: Family;
    persist: boolean;
    /** The tunnels using the port, in file order. */
    readonly users: T[];
}

/** The receive ports of a topology, by host and port number, as tunnels claim them. */
export class PortTable<T> {
    private readonly ports = new Map<string, PortUse<T>>();

    /** Adds `user` to its port; returns the port it cannot share (same number, another binding), else undefined. */
    use(host: string, port: number, encap: Encap, protocol: TunnelProtocol, persist: boolean, user: T, family: Family = 4): PortUse<T> | undefined {
        const ipproto = portIpproto(encap, protocol);
        const key = portKey(host, port);
        const p = this.ports.get(key);
        if (!p) {
            this.ports.set(key, { host, port, encap, ipproto, family, persist, users: [user] });
        } else if (p.encap === encap && p.ipproto === ipproto) {
            p.users.push(user);
            p.persist ||= persist;
        } else {
            return p;
        }
        return undefined;
    }

    get(host: string, port: number): PortUse<T> | undefined {
        return this.ports.get(portKey(host, port));
    }

    /** The model's ports, in the order of `hosts` and then by port number. */
    specs(hosts: readonly string[], name: (t: T) => string): PortSpec[] {
        return [...this.ports.values()]
            .sort((a, b) => hosts.indexOf(a.host) - hosts.indexOf(b.host) || a.port - b.port)
            .map((p) => ({
                host: p.host,
                port: p.port,
                encap: p.encap,
                ...(p.ipproto !== undefined ? { ipproto: p.ipproto } : {}),
                ...(p.family === 6 ? { family: p.family } : {}),
                persist: p.persist,
                tunnels: p.users.map(name),
            }));
    }
}

function portKey(host: string, port: number): string {
    return `${host}\0${port}`;
}

/** The ports of validated tunnels (the guide's, built without a file); a clash is a programming error. */
export function portsOf(hosts: readonly string[], tunnels: readonly TunnelSpec[]): PortSpec[] {
    const table = new PortTable<TunnelSpec>();
    for (const t of tunnels) {
        for (const e of t.ends) {
            if (table.use(e.host, t.port, t.encap, t.protocol, t.persist, t, t.underlay)) {
                throw new Error(`portsOf: port ${t.port} on ${e.host} is needed with two bindings`);
            }
        }
    }
    return table.specs(hosts, (t) => t.name);
}

/** The ports a file's tunnels need; a port number that would need two bindings on a host is reported at the tunnel's port. */
export function collectPorts(r: Report, tunnels: TunnelRec[]): PortTable<TunnelRec> {
    const table = new PortTable<TunnelRec>();
    const binding = (encap: Encap, protocol: TunnelProtocol) =>
        encap === "gue" ? "a GUE port" : `a FOU port delivering ipproto ${IPPROTO[protocol]} (${protocol})`;
    for (const t of tunnels) {
        const { port, encap, protocol, persist } = t.fields;
        if (!t.ends || !port || !encap || !protocol) {
            continue;
        }
        for (const h of t.ends) {
            const p = table.use(h.name, port.value, encap.value, protocol.value, persist?.value ?? false, t, t.underlay);
            if (p) {
                const owner = p.users[0];
                r.add(
                    port.pos,
                    port.path,
                    `port ${port.value}${port.from} on ${h.name} is already ${binding(p.encap, owner.fields.protocol!.value)} for tunnel ${owner.label} ` +
                        `(line ${owner.line}), but this tunnel needs ${binding(encap.value, protocol.value)}; ` +
                        `a FOU port delivers one inner protocol and cannot also be a GUE port: use another port${encap.value === "fou" ? " or encap gue" : ""}`,
                );
            }
        }
    }
    return table;
}
