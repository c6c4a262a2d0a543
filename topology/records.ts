import { Cidr, Family, Ip, formatCidr, formatIp } from "../lib/inet";
import type { KernelSpec } from "../components/topologySpec";
import type { TopologySsh, TunnelValues } from "./model";
import type { Field, ValueKey } from "./schema";
import type { Report, YMap } from "./yaml";

/**
 * What the steps of reading one file pass on to each other: the file's tree and report, the
 * hosts and tunnels as read so far (with positions, for messages), before they become the model.
 */

export interface Context {
    readonly r: Report;
    readonly root: YMap;
    /** The local bridge network, with this machine's address; undefined on aws. */
    readonly underlay: Cidr | undefined;
    /** "198.51.100.0/24 (this machine is 198.51.100.1)"; "" on aws. */
    readonly underlayText: string;
    readonly kind: "local" | "aws" | "ssh";
    /**
     * ssh stacks: the addresses the stack reaches the hosts at and their underlay addresses
     * (filled as the hosts are read). A GWIP, a GWIP pool or a routed prefix must not take one:
     * the tunnel would swallow its own packets, or the SSH path to the host.
     */
    readonly hostAddresses: HostAddress[];
}

/** An address of the machines of an ssh stack, and what it is, for messages. */
export interface HostAddress {
    readonly ip: Ip;
    /** `the underlay address of k1 (line 3)`. */
    readonly what: string;
}

export function context(r: Report, root: YMap, underlay: Cidr | undefined, kind: "local" | "aws" | "ssh" = underlay ? "local" : "aws"): Context {
    const underlayText = underlay ? `${formatCidr(underlay)} (this machine is ${formatIp({ family: 4, value: underlay.address })})` : "";
    return { r, root, underlay, underlayText, kind, hostAddresses: [] };
}

export interface HostRec {
    readonly name: string;
    readonly index: number;
    /** local: the VM's address; ssh: the underlay address; external: the far end's underlay address. */
    readonly address?: Ip;
    /** local: the VM's IPv6 underlay address when the file gives one (its tunnels go over it). */
    readonly underlay?: Ip;
    /** A far end the stack does not manage (`external:`): nothing is built on it (topology/external.ts). */
    readonly external?: boolean;
    readonly fou: boolean;
    readonly ssh?: TopologySsh;
    readonly device?: string;
    /** ssh hosts: the `kernel:` block, when given and valid. */
    readonly kernel?: KernelSpec;
}

/** The hosts section as read. */
export interface Hosts {
    readonly byName: Map<string, HostRec>;
    /** The valid hosts, in file order. */
    readonly list: HostRec[];
    /** Names written in hosts, valid or not: a tunnel naming an invalid one is not reported again. */
    readonly written: Set<string>;
    /** Set when the hosts section itself is wrong: then tunnels naming unknown hosts are not reported. */
    broken: boolean;
}

export function hostNames(hosts: Hosts): string {
    return hosts.list.map((h) => h.name).join(", ") || "none";
}

export interface RouteRec {
    readonly cidr: Cidr;
    readonly pos: number;
    readonly path: string;
}

export interface TunnelRec {
    readonly index: number;
    readonly path: string;
    readonly pos: number;
    readonly line: number;
    /** The name when valid, else the path: for cross-references. */
    label: string;
    name?: string;
    ends?: [HostRec, HostRec];
    readonly fields: { [K in ValueKey]?: Field<TunnelValues[K]> };
    family?: Family;
    /** The underlay's family, of both ends' addresses (4 when an end's is not known: aws). */
    underlay?: Family;
    /** Explicit or allocated; undefined when invalid or not allocated. */
    gwips: [Ip | undefined, Ip | undefined];
    gwipsGiven: boolean;
    ifnames?: [string, string];
    routes: [RouteRec[], RouteRec[]];
}

/** An end of a tunnel in messages: its host, or which one when the hosts are not known. */
export function endLabel(t: TunnelRec, i: number): string {
    return t.ends?.[i].name ?? (i === 0 ? "the first host" : "the second host");
}
