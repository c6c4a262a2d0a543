import { formatCidr, formatIp } from "../lib/inet";
import { Topology, TunnelEndSpec, TunnelValues, tunnelSpec } from "./model";
import type { PortTable } from "./ports";
import type { HostRec, TunnelRec } from "./records";
import type { Field } from "./schema";

/**
 * The model from a file's records, once no problem was found: every value is then present. The
 * hosts the stack manages are `hosts`; the far ends, `externalHosts`.
 */
export function build(source: string, hosts: HostRec[], tunnels: TunnelRec[], ports: PortTable<TunnelRec>): Topology {
    const need = <T>(v: T | undefined, what: string): T => {
        if (v === undefined) {
            throw new Error(`topology: ${what} missing after validation`);
        }
        return v;
    };
    const managed = hosts.filter((h) => !h.external);
    const external = hosts.filter((h) => h.external);
    return {
        source,
        hosts: managed.map((h) => ({
            name: h.name,
            ...(h.address ? { address: formatIp(h.address) } : {}),
            ...(h.underlay ? { underlayAddress: formatIp(h.underlay) } : {}),
            fou: h.fou,
            ...(h.ssh ? { ssh: h.ssh } : {}),
            ...(h.device ? { device: h.device } : {}),
            ...(h.kernel ? { kernel: h.kernel } : {}),
        })),
        externalHosts: external.map((h) => ({ name: h.name, address: formatIp(need(h.address, `host ${h.name}'s external.address`)) })),
        tunnels: tunnels.map((t) => {
            const value = <K extends keyof TunnelValues>(k: K): TunnelValues[K] => need<Field<TunnelValues[K]>>(t.fields[k], `${t.path}.${k}`).value;
            const ends = need(t.ends, `${t.path}.hosts`);
            const ifnames = need(t.ifnames, `${t.path}.interfaces`);
            const end = (i: 0 | 1): TunnelEndSpec => ({
                host: ends[i].name,
                gwip: formatIp(need(t.gwips[i], `${t.path}.gwips[${i}]`)),
                ifname: ifnames[i],
                routes: t.routes[i].map((x) => formatCidr(x.cidr)),
            });
            const values: TunnelValues = {
                protocol: value("protocol"),
                encap: value("encap"),
                port: value("port"),
                sport: value("sport"),
                csum: value("csum"),
                mtu: value("mtu"),
                ttl: value("ttl"),
                persist: value("persist"),
            };
            return tunnelSpec(need(t.name, `${t.path}.name`), values, [end(0), end(1)], t.underlay);
        }),
        // The far ends' ports are their operators' (components/farEnd.ts lists them).
        ports: ports
            .specs(
                hosts.map((h) => h.name),
                (t) => need(t.name, `${t.path}.name`),
            )
            .filter((p) => !external.some((h) => h.name === p.host)),
    };
}
