import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { hostCommand, TunnelHost, withSudo } from "./host";
import { sh } from "./shell";
import { checkIpv4, parseIp } from "../lib/inet";
import { checkHostKey, checkSshAddress, checkSshPort, checkSshUser, normalizeHostKey } from "../lib/ssh";
import { checkHostName, checkIfname, checkInt, FouInputError, throwIfInvalid } from "../lib/validate";

/** How to log in to one machine (the host itself, or the jump host in front of it). */
export interface SshLoginArgs {
    /** Address or DNS name of the machine; for a host behind a proxy, as the proxy reaches it. */
    readonly address: pulumi.Input<string>;
    /** Default 22. */
    readonly port?: pulumi.Input<number>;
    /** Default root (a proxy: the host's user). */
    readonly user?: pulumi.Input<string>;
    /** OpenSSH or PEM private key (pass a secret); with neither key nor agent, the plugin uses `SSH_AUTH_SOCK`. */
    readonly privateKey?: pulumi.Input<string>;
    /** An SSH agent's socket, used in addition to the key. */
    readonly agentSocketPath?: pulumi.Input<string>;
    /**
     * The machine's SSH public key, pinned: `ssh-ed25519 AAAA…` (a comment may follow, and a line
     * of `ssh-keyscan` output is taken as well). Required: without it any machine could pose as
     * the host and be sent every script.
     */
    readonly hostKey: pulumi.Input<string>;
}

export interface SshHostArgs extends SshLoginArgs {
    /** The host's name in the topology: resource names and default interface names (`fto<peer>`). */
    readonly name: string;
    /** Login user, default root. Plain: it decides whether the steps go through sudo. */
    readonly user?: string;
    /** A jump host the connection goes through; its key and agent default to the host's. */
    readonly proxy?: SshLoginArgs;
    /** The tunnel's local address on this host; default `address`, which must then be IPv4. */
    readonly underlayAddress?: pulumi.Input<string>;
    /** The underlay device; default: the one holding the underlay address, as the host reports it. */
    readonly device?: pulumi.Input<string>;
    /**
     * Run every step as `sudo -n /bin/sh -c …`; default: when `user` is not root. The steps need
     * root (modprobe, sysctl, `ip link`, files in /etc); sudo must not ask for a password.
     */
    readonly sudo?: boolean;
    /** Dials per command and seconds per dial, of the host and its jump host; default {@link SSH_HOST_DIALS}. */
    readonly dials?: { readonly dialErrorLimit?: number; readonly perDialTimeout?: number };
}

/**
 * SSH dials per command and seconds per dial: an existing machine answers at once or not at all,
 * so a dead one fails a step in about a minute instead of hanging the deployment.
 */
export const SSH_HOST_DIALS = { dialErrorLimit: 5, perDialTimeout: 10 } as const;

/** What {@link reachScript} needs: the host as messages name it, the underlay address, the device if given. */
export interface ReachSettings {
    /** `k1 (deploy@198.51.100.162 port 22)`. */
    readonly label: string;
    readonly underlayAddress: string;
    /** Given by the caller: must exist; otherwise the device holding the underlay address is reported. */
    readonly device?: string;
    /** The connection's user is not root and the script goes through sudo. */
    readonly sudo: boolean;
}

/**
 * The first command on a host: it got there (the dial worked and the pinned host key matched),
 * the user is root or sudo works without a password, `ip` is installed, the underlay address is
 * one of the host's, and the device: `ip -o -4 addr show` names the one holding the address.
 * Prints `device=<name>` and `address=<underlay>`. Changes nothing on the host.
 */
export function reachScript(s: ReachSettings): string {
    const body = [
        "set -eu",
        sh`at=${s.label}; want=${s.underlayAddress}; given=${s.device ?? ""}`,
        "host=$(hostname)",
        'if ! command -v ip >/dev/null 2>&1; then echo "fou-tunnel: $at: $host has no ip command: install iproute2" >&2; exit 1; fi',
        `dev=$(ip -o -4 addr show | awk -v a="$want" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')`,
        'if [ -z "$dev" ]; then',
        `  have=$(ip -o -4 addr show scope global | awk '{ printf "%s%s on %s", s, $4, $2; s = ", " }')`,
        '  echo "fou-tunnel: $at: $want is not an address of $host (it has ${have:-no global IPv4 address}): set underlayAddress to the address its peers reach it at" >&2; exit 1',
        "fi",
        'if [ -n "$given" ] && [ "$given" != "$dev" ]; then',
        '  if ! ip link show dev "$given" >/dev/null 2>&1; then echo "fou-tunnel: $at: $host has no device $given ($want is on $dev): set device to an existing one, or leave it unset" >&2; exit 1; fi',
        '  dev=$given',
        "fi",
        'echo "device=$dev"',
        'echo "address=$want"',
    ].join("\n");
    if (!s.sudo) {
        return [
            sh`at=${s.label}`,
            'if [ "$(id -u)" != 0 ]; then echo "fou-tunnel: $at: user $(id -un) is not root and sudo is off: the steps need root; connect as root or turn sudo on" >&2; exit 1; fi',
            body,
        ].join("\n");
    }
    return [
        sh`at=${s.label}`,
        'if ! command -v sudo >/dev/null 2>&1; then echo "fou-tunnel: $at: user $(id -un) is not root and $(hostname) has no sudo: install sudo and allow this user to run commands without a password (NOPASSWD), or connect as root" >&2; exit 1; fi',
        withSudo(body),
    ].join("\n");
}

/** The device from the first command's output; anything but an interface name fails the deployment. */
export function parseReachDevice(label: string, stdout: string): string {
    const found = /^device=(.*)$/m.exec(stdout)?.[1];
    throwIfInvalid([checkIfname(`SshHost ${label}: the underlay device the host reported (${JSON.stringify(stdout)})`, found)]);
    return found as string;
}

/**
 * A machine that already exists, reached over SSH, as the tunnel components' {@link TunnelHost}
 * (`host`). Nothing about the machine belongs to the stack: no command is `deletedWith` it, so
 * destroy undoes every step on it, and the machine itself is left alone. A first command
 * (`<name>-reachable`) checks that the host answers with the pinned key, that the user is root
 * or sudo works without a password, and that the underlay address is the host's, and detects the
 * underlay device; every step on the host waits for it. Dials are bounded ({@link SSH_HOST_DIALS}).
 * A different address or port means a different machine: every step is replaced (the old one's
 * undone through its stored connection). A library piece: it reads no configuration.
 */
export class SshHost extends pulumi.ComponentResource {
    public readonly host: TunnelHost;
    /** The underlay device, as given or as the host reported it. */
    public readonly device: pulumi.Output<string>;
    public readonly underlayAddress: pulumi.Output<string>;
    /** The first command; everything on the host depends on it. */
    public readonly reachable: command.remote.Command;

    constructor(name: string, args: SshHostArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const at = `SshHost ${name}`;
        const user = args.user ?? "root";
        const sudo = args.sudo ?? user !== "root";
        throwIfInvalid(plainProblems(at, args, user));
        const dials = { ...SSH_HOST_DIALS, ...args.dials };
        super("fou:index:SshHost", name, {}, opts);

        const port = pulumi.output(args.port ?? 22);
        const address = pulumi.output(args.address);
        const label = pulumi.interpolate`${args.name} (${user}@${address} port ${port})`;
        this.underlayAddress = pulumi.all([address, args.underlayAddress]).apply(([a, u]) => {
            throwIfInvalid([underlayProblem(at, a, u)]);
            return u ?? a;
        });
        const connection = pulumi.secret(
            pulumi
                .all([address, port, args.hostKey, args.privateKey, args.agentSocketPath])
                .apply(([a, p, hostKey, privateKey, agentSocketPath]) => {
                    throwIfInvalid([checkSshAddress(`${at}: address`, a), checkSshPort(`${at}: port`, p)]);
                    return {
                        host: a,
                        port: p,
                        user,
                        hostKey: pinned(`${at}: hostKey`, hostKey, { address: a, port: p }),
                        ...(privateKey === undefined ? {} : { privateKey }),
                        ...(agentSocketPath === undefined ? {} : { agentSocketPath }),
                        ...dials,
                    };
                })
                .apply((c) => (args.proxy ? proxyOf(at, args.proxy, c, dials) : pulumi.output(c))),
        );
        this.reachable = hostCommand(
            `${name}-reachable`,
            {
                // Its own sudo handling: whether sudo is there at all is checked before using it.
                host: { name: args.name, underlayAddress: this.underlayAddress, device: "", connection },
                scripts: pulumi
                    .all([label, this.underlayAddress, args.device])
                    .apply(([l, u, d]) => ({ create: reachScript({ label: l, underlayAddress: u, device: d, sudo }) })),
                // Another address or port is another machine: look again, rather than update.
                triggers: [address, port],
            },
            { parent: this },
        );
        this.device =
            args.device !== undefined
                ? pulumi.all([args.device, this.reachable.stdout]).apply(([d]) => {
                      throwIfInvalid([checkIfname(`${at}: device`, d)]);
                      return d;
                  })
                : pulumi.all([label, this.reachable.stdout]).apply(([l, out]) => parseReachDevice(l, out));
        this.host = {
            name: args.name,
            underlayAddress: this.underlayAddress,
            // Given: known at preview (a detected one is unknown in a preview that re-runs the first command).
            device: args.device !== undefined ? pulumi.output(args.device) : this.device,
            connection,
            readyAfter: [this.reachable],
            identity: pulumi.interpolate`${address}:${port}`,
            ...(sudo ? { sudo: true } : {}),
        };
        this.registerOutputs({ device: this.device, underlayAddress: this.underlayAddress });
    }
}

type Connection = command.types.input.remote.ConnectionArgs;

/** The problems with the arguments known now; the rest are checked once resolved. */
function plainProblems(at: string, args: SshHostArgs, user: string): (string | undefined)[] {
    const plain = <T>(v: pulumi.Input<T> | undefined): v is T => v !== undefined && !pulumi.Output.isInstance(v) && !(v instanceof Promise);
    const port = plain(args.port) ? args.port : undefined;
    const endpoint = { address: plain(args.address) ? args.address : "HOST", port };
    return [
        checkHostName(`${at}: name`, args.name),
        checkSshUser(`${at}: user`, user),
        plain(args.address) ? checkSshAddress(`${at}: address`, args.address) : undefined,
        port !== undefined ? checkSshPort(`${at}: port`, port) : undefined,
        args.hostKey === undefined || plain(args.hostKey) ? checkHostKey(`${at}: hostKey`, args.hostKey, endpoint) : undefined,
        plain(args.underlayAddress) || (args.underlayAddress === undefined && plain(args.address) && checkSshAddress("", args.address) === undefined)
            ? underlayProblem(at, args.address as string, args.underlayAddress as string | undefined)
            : undefined,
        plain(args.device) ? checkIfname(`${at}: device`, args.device) : undefined,
        args.dials?.dialErrorLimit === undefined ? undefined : checkInt(`${at}: dials.dialErrorLimit`, args.dials.dialErrorLimit, -1, 1000),
        args.dials?.perDialTimeout === undefined ? undefined : checkInt(`${at}: dials.perDialTimeout`, args.dials.perDialTimeout, 1, 300),
        args.sudo === false && user !== "root"
            ? `${at}: sudo is false but user ${user} is not root: the steps need root (modprobe, sysctl, ip, files in /etc); leave sudo unset or connect as root`
            : undefined,
        ...(args.proxy ? proxyProblems(`${at}: proxy`, args.proxy, endpoint) : []),
    ];
}

function proxyProblems(at: string, p: SshLoginArgs, host: { address: string; port?: number }): (string | undefined)[] {
    const plain = <T>(v: pulumi.Input<T> | undefined): v is T => v !== undefined && !pulumi.Output.isInstance(v) && !(v instanceof Promise);
    const address = plain(p.address) ? p.address : undefined;
    const port = plain(p.port) ? p.port : undefined;
    return [
        p.address === undefined ? `${at}.address is required: the jump host's address` : address !== undefined ? checkSshAddress(`${at}.address`, address) : undefined,
        port !== undefined ? checkSshPort(`${at}.port`, port) : undefined,
        plain(p.user) ? checkSshUser(`${at}.user`, p.user) : undefined,
        p.hostKey === undefined || plain(p.hostKey) ? checkHostKey(`${at}.hostKey`, p.hostKey, { address: address ?? "PROXY", port }) : undefined,
        address !== undefined && address === host.address && (port ?? 22) === (host.port ?? 22) ? `${at} is the host itself (${address} port ${port ?? 22})` : undefined,
    ];
}

/** The underlay address must be IPv4 (the tunnel's local); the SSH address is the default. */
export function underlayProblem(at: string, address: string, underlay: string | undefined): string | undefined {
    if (underlay !== undefined) {
        return checkIpv4(`${at}: underlayAddress`, underlay);
    }
    const ip = parseIp(address);
    if (ip?.family !== 4) {
        return `${at}: address ${address} is not an IPv4 address, so it cannot be the underlay address: set underlayAddress, the IPv4 address the host's peers reach it at`;
    }
    return checkIpv4(`${at}: address ${address} (the default underlayAddress)`, address);
}

/** The pinned key in the plugin's form, or a deployment error naming the key and how to get it. */
function pinned(key: string, value: string, e: { address: string; port: number }): string {
    const k = normalizeHostKey(value);
    if (k === undefined) {
        throw new FouInputError([checkHostKey(key, value, e) ?? `${key} is not valid`]);
    }
    return k;
}

/** The host's connection through its jump host: the proxy's own login, its key and agent defaulting to the host's. */
function proxyOf(at: string, p: SshLoginArgs, host: Connection & { host: string; port: number; user: string }, dials: { dialErrorLimit: number; perDialTimeout: number }): pulumi.Output<Connection> {
    return pulumi.all([p.address, p.port ?? 22, p.user ?? host.user, p.hostKey, p.privateKey ?? host.privateKey, p.agentSocketPath ?? host.agentSocketPath]).apply(
        ([address, port, user, hostKey, privateKey, agentSocketPath]) => {
            throwIfInvalid([checkSshAddress(`${at}: proxy.address`, address), checkSshPort(`${at}: proxy.port`, port), checkSshUser(`${at}: proxy.user`, user)]);
            return {
                ...host,
                proxy: {
                    host: address,
                    port,
                    user,
                    hostKey: pinned(`${at}: proxy.hostKey`, hostKey, { address, port }),
                    ...(privateKey === undefined ? {} : { privateKey }),
                    ...(agentSocketPath === undefined ? {} : { agentSocketPath }),
                    ...dials,
                },
            };
        },
    );
}
