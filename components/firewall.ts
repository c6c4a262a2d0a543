import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import { BootUnit } from "./bootUnit";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand } from "./hostState";
import { HOST_PATHS, HostPaths } from "./hostPaths";
import { checkIp, familyOf } from "../lib/inet";
import { contains, sh, shq } from "./shell";
import { checkPort, throwIfInvalid } from "../lib/validate";

/** One receive port and the underlay addresses allowed to send to it. */
export interface PortPeers {
    readonly port: number;
    readonly peers: string[];
}

export interface FirewallArgs {
    readonly host: TunnelHost;
    /** Each receive port of the host with the underlay addresses of the tunnels' peers on it. */
    readonly ports: { readonly port: number; readonly peers: pulumi.Input<string>[] }[];
    /** Names the table: `inet fou_<hash>`, one per stack (default: the stack's state namespace). */
    readonly namespace: string;
    /** Load the same rules at every boot (a BootUnit), as persisted ports are re-added. */
    readonly persist?: boolean;
    readonly dependsOn?: pulumi.Resource[];
}

/**
 * A shell test that nf_tables is loaded, or built into the kernel. The release is read by the
 * shell, not from `uname -r` (a builtin, no process).
 */
function nftPresent(p: HostPaths): string {
    const builtin = `read -r fou_rel < ${shq(p.kernelRelease)} && grep -qs "/nf_tables\\.ko" ${shq(p.libModules)}"/$fou_rel/modules.builtin"`;
    return `{ [ -d ${shq(`${p.sysModule}/nf_tables`)} ] || { ${builtin}; }; }`;
}

/** Present when a fou-tunnel table loaded nf_tables (it was not there before). */
function nftLoaded(p: HostPaths): string {
    return `${p.stateRoot}/nf_tables.loaded`;
}

/** The table of a namespace: nft identifiers are letters, digits and `_`, so a hash of it. */
export function firewallTable(namespace: string): string {
    return `fou_${createHash("sha256").update(namespace).digest("hex").slice(0, 12)}`;
}

/**
 * An unconnected FOU or GUE port decapsulates packets from anyone who can reach it (FOU has
 * no authentication). This closes each receive port to all but the tunnels' peers, in a table of the stack's
 * own (other tables, and other stacks' tables, are not touched):
 *
 *     table inet fou_<hash> {
 *       chain input {
 *         type filter hook input priority filter; policy accept;
 *         udp dport 5555 ip saddr { 198.51.100.152 } accept
 *         udp dport 5555 counter drop
 *       }
 *     }
 *
 * Apply loads the whole table in one `nft -f` transaction (create, flush by delete, define), so
 * re-running it is harmless; every rule carries a comment with a hash of the ruleset, which the
 * check counts; remove deletes the table.
 */
export function firewallObject(table: string, ports: PortPeers[], paths: HostPaths = HOST_PATHS): HostObject {
    const present = nftPresent(paths);
    const loaded = nftLoaded(paths);
    const rules = ports.flatMap(({ port, peers }) => {
        const v4 = peers.filter((p) => familyOf(p) === 4);
        const v6 = peers.filter((p) => familyOf(p) === 6);
        return [
            ...(v4.length ? [`udp dport ${port} ip saddr { ${v4.join(", ")} } accept`] : []),
            ...(v6.length ? [`udp dport ${port} ip6 saddr { ${v6.join(", ")} } accept`] : []),
            `udp dport ${port} counter drop`,
        ];
    });
    const tag = createHash("sha256").update(rules.join("\n")).digest("hex").slice(0, 16);
    const comment = `fou-tunnel ${tag}`;
    const ruleset = [
        `table inet ${table}`,
        `delete table inet ${table}`,
        `table inet ${table} {`,
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        ...rules.map((r) => `    ${r} comment "${comment}"`),
        "  }",
        "}",
        "",
    ].join("\n");
    // Only once nf_tables is there: `nft list` would load it, and the check runs before apply.
    const listed = `{ ${present} && ${sh`nft list table inet ${table} 2>/dev/null`}; }`;
    return {
        apply: [
            'if ! command -v nft >/dev/null 2>&1; then echo "fou-tunnel: $(hostname) has no nft: install nftables, or set firewall: false in the topology" >&2; exit 1; fi',
            // nf_tables loaded for us: remembered host-wide, so the last table of any stack to go unloads it.
            `if ! ${present}; then ${sh`mkdir -p ${paths.stateRoot}; : > ${loaded}`}; fi`,
            sh`printf '%s' ${ruleset} | nft -f -`,
        ].join("\n"),
        // The tagged rules counted by the shell (read, case), not grep.
        check: expect(
            `${listed} | { n=0; while IFS= read -r l; do if ${contains('"$l"', `comment "${comment}"`)}; then n=$((n + 1)); fi; done; [ "$n" = ${rules.length} ]; }`,
            `nftables table inet ${table} is missing or changed`,
        ),
        remove: [
            `if ${listed} >/dev/null; then ${sh`nft delete table inet ${table}`}; fi`,
            // No table left of anyone: unload what the first table loaded (nfnetlink and libcrc32c go with it).
            sh`if [ -f ${loaded} ] && [ -z "$(nft list tables 2>/dev/null)" ] && modprobe -r nf_tables 2>/dev/null; then rm -f ${loaded}; fi`,
        ].join("\n"),
    };
}

/** The stack's nftables table on one host: each FOU/GUE receive port open to its peers only. */
export class Firewall extends pulumi.ComponentResource {
    public readonly table: string;
    public readonly command: command.remote.Command;

    constructor(name: string, args: FirewallArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const problems = (ports: { port: number; peers: unknown[] }[]) =>
            ports.flatMap((p, i) => [
                checkPort(`Firewall ${name}: ports[${i}].port`, p.port),
                p.peers.length === 0 ? `Firewall ${name}: ports[${i}] has no peers` : undefined,
                ...p.peers.map((a, j) => (typeof a === "string" ? checkIp(`Firewall ${name}: ports[${i}].peers[${j}]`, a) : undefined)),
            ]);
        // What is known now is checked now, before anything is declared; addresses that are
        // other resources' outputs are checked when they resolve.
        throwIfInvalid(problems(args.ports));
        super("fou:index:Firewall", name, {}, opts);
        this.table = firewallTable(args.namespace);
        const object = pulumi.output(args.ports.map((p) => pulumi.all(p.peers).apply((peers) => ({ port: p.port, peers })))).apply((ports) => {
            throwIfInvalid(problems(ports));
            return firewallObject(this.table, ports);
        });
        const step = objectCommand(
            `${name}-nft`,
            { host: args.host, object, triggers: [this.table], what: `nftables table inet ${this.table}` },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.command = step.command;
        if (args.persist) {
            new BootUnit(
                `${name}-rules`,
                { host: args.host, unit: "firewall", description: `nftables table inet ${this.table}`, script: object.apply((o) => o.apply), dependsOn: [this.command] },
                { parent: this },
            );
        }
        this.registerOutputs({ table: this.table });
    }
}
