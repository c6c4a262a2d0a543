/**
 * The TunnelHosts of an AwsHosts: each instance's SSH login (the stack's key, its pinned host
 * key) and a poll over SSH that waits out boot and cloud-init and reports the underlay device.
 */
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { TunnelHost } from "../components/host";
import { hostLibrary } from "../components/hostLibrary";
import { script, sh } from "../components/shell";
import { SSH_DIALS } from "../lib/sshLogin";
import { checkIfname, throwIfInvalid } from "../lib/validate";

/** The poll's dials: boot and cloud-init take a few minutes (40 dials of up to 15 s, plus back-off). */
export const AWS_POLL_DIALS = { dialErrorLimit: 40, perDialTimeout: 15 } as const;

/** And the engine's bound on the whole poll. */
export const AWS_POLL_TIMEOUTS: pulumi.CustomTimeouts = { create: "15m", update: "15m", delete: "1m" };

/**
 * Waits until cloud-init has finished with the user data (the packages it installs come last, after
 * sshd is up) and fails, naming the status, if it did not finish cleanly. Then prints
 * `device=<name>`: the interface that holds the host's private address, else the default route's
 * device (`ens5` on Nitro instances). Not `ip route get <own address>`: the local table answers
 * that with `dev lo`. Runs as the login user, without sudo. The script is
 * `components/sh/aws-poll.sh`.
 */
export function pollScript(privateIp: string): string {
    return script(sh`fou_private=${privateIp}`, hostLibrary("aws-poll.sh"));
}

/** The device from the poll's output; fails the deployment on anything but an interface name. */
export function parsePollOutput(stdout: string): string {
    const found = /^device=(.*)$/m.exec(stdout)?.[1];
    throwIfInvalid([checkIfname(`underlay device reported by the host (${JSON.stringify(stdout)})`, found)]);
    return found as string;
}

/** What {@link awsTunnelHost} makes one host from. */
export interface AwsTunnelHostArgs {
    /** The AwsHosts's name: the poll is `<name>-<host>-poll`. */
    readonly name: string;
    readonly host: string;
    readonly instance: aws.ec2.Instance;
    /** The login user cloud-init made. */
    readonly sshUser: string;
    /** The stack's SSH private key (secret). */
    readonly privateKey: pulumi.Output<string>;
    /** The host key its user data installed, `ssh-ed25519 AAAA…`. */
    readonly hostKey: pulumi.Output<string>;
    /** What the poll waits for besides the instance: the SSH rule and the internet route. */
    readonly pollAfter: pulumi.Resource[];
}

/** One host, ready once its poll (a child of `parent`) has answered. */
export function awsTunnelHost(parent: pulumi.Resource, a: AwsTunnelHostArgs): TunnelHost {
    const { instance } = a;
    // The user cloud-init made, the stack's key, and the host key the user data installed:
    // a host presenting any other key is refused before anything is sent to it.
    const login = pulumi.all([instance.publicIp, a.privateKey, a.hostKey]).apply(([ip, privateKey, hostKey]) => ({
        host: ip,
        user: a.sshUser,
        privateKey,
        hostKey,
    }));
    // The poll has waited for the host: the tunnel steps need the login model's few dials.
    const connection = pulumi.secret(login.apply((c) => ({ ...c, ...SSH_DIALS })));
    // The poll waits out boot and cloud-init; after it, the host answers at once.
    const poll = new command.remote.Command(
        `${a.name}-${a.host}-poll`,
        {
            connection: pulumi.secret(login.apply((c) => ({ ...c, ...AWS_POLL_DIALS }))),
            create: instance.privateIp.apply(pollScript),
            triggers: [instance.id],
        },
        { parent, dependsOn: a.pollAfter, customTimeouts: AWS_POLL_TIMEOUTS },
    );
    return {
        name: a.host,
        underlayAddress: instance.privateIp,
        device: poll.stdout.apply(parsePollOutput),
        connection,
        readyAfter: [poll],
        identity: instance.id,
        // The login user is not root: every step runs through `sudo -n`.
        sudo: a.sshUser !== "root",
        // Terminating the instance takes its tunnel with it: no undo over SSH (which a
        // dead or stopped instance could not answer anyway).
        deletedWith: instance,
    };
}
