/**
 * The fou-tunnel components used from another Pulumi program: one IPIP-over-FOU tunnel between
 * two Linux hosts that already exist, reached over SSH at the addresses in this stack's config.
 * Each host is prepared first (kernel check, `fou` and `ipip` loaded); `pulumi destroy` undoes
 * every step and leaves the hosts as they were.
 */
import * as pulumi from "@pulumi/pulumi";
import { FouInputError, FouTunnel, HostPrep, SshHost } from "fou-tunnel";

/** One host as the stack config gives it (`fou-existing-hosts:hosts`). */
interface HostConfig {
    /** Short name: resource names and the default interface name on the peer (`fto<name>`). */
    readonly name: string;
    /** Where SSH reaches the host. */
    readonly address: string;
    /** SSH port; default 22. */
    readonly sshPort?: number;
    /** Login user; default root. Another user runs the steps through sudo, which must not ask for a password. */
    readonly user?: string;
    /** The host's SSH key (`ssh-ed25519 AAAA…`, as in known_hosts without the host name): pinned. */
    readonly hostKey: string;
    /** The address the peer sends the tunnel's UDP to; default `address`. */
    readonly underlayAddress?: string;
    /** The underlay device (the tunnel's `dev`); default: the one holding the underlay address. */
    readonly device?: string;
}

const config = new pulumi.Config();
const hosts = config.requireObject<HostConfig[]>("hosts");
const privateKey = config.requireSecret("privateKey");
const port = config.getNumber("port") ?? 5555;
const gwips = config.getObject<[string, string]>("gwips") ?? ["10.10.10.1", "10.10.10.2"];
const check = config.getBoolean("check") ?? true;

const problems: string[] = [];
if (!Array.isArray(hosts) || hosts.length !== 2) {
    problems.push(`fou-existing-hosts:hosts must list exactly two hosts (got ${JSON.stringify(hosts)})`);
} else {
    hosts.forEach((h, i) => {
        for (const key of ["name", "address", "hostKey"] as const) {
            if (typeof h?.[key] !== "string" || h[key] === "") {
                problems.push(`fou-existing-hosts:hosts[${i}].${key} must be set`);
            }
        }
    });
}
if (!Array.isArray(gwips) || gwips.length !== 2) {
    problems.push(`fou-existing-hosts:gwips must list two addresses, one per host (got ${JSON.stringify(gwips)})`);
}
if (problems.length > 0) {
    throw new FouInputError(problems);
}

// Each machine as a TunnelHost: its first command checks the login (pinned host key), root or
// sudo, and that the underlay address is the host's, and finds the underlay device.
const machines = hosts.map(
    (h) =>
        new SshHost(h.name, {
            name: h.name,
            address: h.address,
            port: h.sshPort,
            user: h.user,
            privateKey,
            hostKey: h.hostKey,
            underlayAddress: h.underlayAddress,
            device: h.device,
        }),
);
const [a, b] = machines.map((m) => m.host);
// Forwarding stays as it is: a tunnel between GWIPs alone ends at its hosts, routes nothing through.
const [prepA, prepB] = [a, b].map((h) => new HostPrep(`${h.name}-prep`, { host: h, ipForward: false }));
const tunnel = new FouTunnel(`${a.name}-${b.name}`, {
    a: { host: a, gwip: gwips[0], prepared: prepA.ready },
    b: { host: b, gwip: gwips[1], prepared: prepB.ready },
    port,
    check,
});

/** Host name → GWIP. */
export const tunnelGwips = tunnel.gwips;
/** Host name → tunnel interface (`fto<peer>`). */
export const interfaces = tunnel.interfaces;
/** Host name → the tunnel's MTU, as the kernel set it. */
export const mtu = pulumi.all(tunnel.ends.map((e) => e.mtu.apply((m) => [e.host, m] as const))).apply(Object.fromEntries);
/** The guide's ping + capture from each end (empty with `check: false`). */
export const verification = tunnel.checks;
/** What each host's kernel step found: `kernel=<release>`, `modules=…`. */
export const kernels = { [a.name]: prepA.kernelReport, [b.name]: prepB.kernelReport };
