import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { hostCommand, TunnelHost, withSudo } from "./host";
import { hostFunctions } from "./hostLibrary";
import { sh } from "./shell";
import { checkUnderlay, parseIp } from "../lib/inet";
import { checkSshAddress } from "../lib/ssh";
import { NOT_KNOWN, SSH_PORT, SSH_USER, SshLogin, SshLoginArgs, resolveSshLogin, sshConnection, sshLoginProblems, sudoByDefault } from "../lib/sshLogin";
import { checkHostName, checkIfname, throwIfInvalid } from "../lib/validate";

export { SSH_DIALS } from "../lib/sshLogin";
export type { SshDials, SshJump, SshLogin, SshLoginArgs } from "../lib/sshLogin";

/** A machine that exists already: how to log in to it (the login model's), and what the tunnel uses on it. */
export interface SshHostArgs extends SshLoginArgs {
    /** The host's name in the topology: resource names and default interface names (`fto<peer>`). */
    readonly name: string;
    /** Login user, default root. Plain: it decides whether the steps go through sudo. */
    readonly user?: string;
    /** The tunnel's local address on this host (IPv4 or IPv6); default `address`, which must then be an IP address. */
    readonly underlayAddress?: pulumi.Input<string>;
    /** The underlay device; default: the one holding the underlay address, as the host reports it. */
    readonly device?: pulumi.Input<string>;
    /**
     * Run every step as `sudo -n /bin/sh -c …`; default: when `user` is not root. The steps need
     * root (modprobe, sysctl, `ip link`, files in /etc); sudo must not ask for a password.
     */
    readonly sudo?: boolean;
}

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
 * Prints `device=<name>` and `address=<underlay>`. Changes nothing on the host. The script is
 * `components/sh/reach.sh`; through sudo, its look at the host runs as `sudo -n /bin/sh -c`.
 */
export function reachScript(s: ReachSettings): string {
    const label = sh`at=${s.label}`;
    const body = ["set -eu", label, sh`want=${s.underlayAddress}; given=${s.device ?? ""}`, hostFunctions("reach.sh", ["fou_reach"]), "fou_reach"].join("\n");
    if (!s.sudo) return [label, hostFunctions("reach.sh", ["fou_need_root"]), "fou_need_root", body].join("\n");
    return [label, hostFunctions("reach.sh", ["fou_need_sudo"]), "fou_need_sudo", withSudo(body)].join("\n");
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
 * underlay device; every step on the host waits for it. Dials are bounded (the login's, default
 * {@link SSH_DIALS}).
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
        const user = args.user ?? SSH_USER;
        const sudo = args.sudo ?? sudoByDefault(user);
        throwIfInvalid(plainProblems(at, args, user));
        super("fou:index:SshHost", name, {}, opts);

        const port = pulumi.output(args.port ?? SSH_PORT);
        const address = pulumi.output(args.address);
        const label = pulumi.interpolate`${args.name} (${user}@${address} port ${port})`;
        this.underlayAddress = pulumi.all([address, args.underlayAddress]).apply(([a, u]) => {
            throwIfInvalid([underlayProblem(at, a, u)]);
            return u ?? a;
        });
        const connection = pulumi.secret(resolvedLogin(args, user).apply((l) => connectionOf(at, l)));
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

/** The login of the arguments, every Input resolved (the key only inside this Output, which is secret when it is). */
function resolvedLogin(args: SshHostArgs, user: string): pulumi.Output<SshLogin<string>> {
    const { address, port, hostKey, privateKey, agentSocketPath, proxy, dials } = args;
    return pulumi.output({ address, port, user, hostKey, privateKey, agentSocketPath, proxy, dials }) as pulumi.Output<SshLogin<string>>;
}

/** The command plugin's connection for a resolved login; a deployment error names each bad value. */
function connectionOf(at: string, l: SshLogin<string>): command.types.input.remote.ConnectionArgs {
    const { login, problems } = resolveSshLogin(l, (f) => `${at}: ${f}`);
    throwIfInvalid(problems);
    return sshConnection(login!);
}

/** The problems with the arguments known now; the rest are checked once resolved. */
function plainProblems(at: string, args: SshHostArgs, user: string): (string | undefined)[] {
    const plain = <T>(v: pulumi.Input<T> | undefined): v is T => v !== undefined && !pulumi.Output.isInstance(v) && !(v instanceof Promise);
    const now = (v: pulumi.Input<unknown> | undefined): unknown => (v === undefined || plain(v) ? v : NOT_KNOWN);
    const p = args.proxy;
    const draft = {
        address: now(args.address),
        port: now(args.port),
        user,
        hostKey: now(args.hostKey),
        dials: args.dials,
        ...(p ? { proxy: { address: now(p.address), port: now(p.port), user: now(p.user), hostKey: now(p.hostKey) } } : {}),
    };
    return [
        checkHostName(`${at}: name`, args.name),
        ...sshLoginProblems(draft, (f) => `${at}: ${f}`),
        plain(args.underlayAddress) || (args.underlayAddress === undefined && plain(args.address) && checkSshAddress("", args.address) === undefined)
            ? underlayProblem(at, args.address as string, args.underlayAddress as string | undefined)
            : undefined,
        plain(args.device) ? checkIfname(`${at}: device`, args.device) : undefined,
        args.sudo === false && sudoByDefault(user)
            ? `${at}: sudo is false but user ${user} is not root: the steps need root (modprobe, sysctl, ip, files in /etc); leave sudo unset or connect as root`
            : undefined,
    ];
}

/** The underlay address (the tunnel's local) must be a unicast IPv4 or IPv6 address; the SSH address is the default. */
export function underlayProblem(at: string, address: string, underlay: string | undefined): string | undefined {
    if (underlay !== undefined) {
        return checkUnderlay(`${at}: underlayAddress`, underlay);
    }
    if (!parseIp(address)) {
        return `${at}: address ${address} is not an IP address, so it cannot be the underlay address: set underlayAddress, the IPv4 or IPv6 address the host's peers reach it at`;
    }
    return checkUnderlay(`${at}: address ${address} (the default underlayAddress)`, address);
}
