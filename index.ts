/**
 * fou-tunnel: the FOU guide's IPIP-over-UDP tunnel between two hosts, declared.
 *
 * `pulumi up` on the default (local) stack boots two new-kernel VMs on this machine and builds
 * the tunnel between them; `pulumi destroy` undoes every step on the VMs, then removes them.
 */
import * as pulumi from "@pulumi/pulumi";
import { FouTunnel } from "./components/fouTunnel";
import { HostPrep } from "./components/hostPrep";
import { loadSettings } from "./config";
import { AwsHosts } from "./hosts/aws";
import { LocalVms } from "./hosts/local";

const settings = loadSettings(new pulumi.Config());

const ec2 = settings.aws ? new AwsHosts("aws", { settings: settings.aws, port: settings.port }) : undefined;
const local = ec2
    ? undefined
    : new LocalVms("local", { settings: settings.local, stackId: `${pulumi.getProject()}/${pulumi.getStack()}` });
const hosts = ec2?.hosts ?? local!.hosts;

let tunnel: FouTunnel | undefined;
if (settings.tunnel) {
    const preps = hosts.map((host) => new HostPrep(`${host.name}-prep`, { host }));
    tunnel = new FouTunnel("fou", {
        a: { host: hosts[0], gwip: settings.gwips[0], prepared: preps[0].ready },
        b: { host: hosts[1], gwip: settings.gwips[1], prepared: preps[1].ready },
        port: settings.port,
        check: settings.check,
    });
}

/** Host name → underlay address. */
export const underlay = ec2 ? ec2.privateIps : Object.fromEntries(settings.local.vms.map((vm) => [vm.name, vm.address]));
/** Host name → public address and the ssh command to reach it (aws stacks). */
export const publicIps = ec2?.publicIps ?? {};
/** How to log in to each host, with the key from `sshPrivateKey` saved to the file named. */
export const sshCommands =
    ec2?.sshCommands ?? Object.fromEntries(settings.local.vms.map((vm) => [vm.name, `ssh -i fou-key.pem root@${vm.address}`]));
/** Host name → GWIP (10.10.10.1 on k1, 10.10.10.2 on k2 by default). */
export const gwips = tunnel?.gwips ?? {};
/** Host name → tunnel interface (`ftok2` on k1, `ftok1` on k2). */
export const interfaces = tunnel?.interfaces ?? {};
export const port = settings.port;
/** Tunnel MTU per host, as the kernel set it. */
export const mtu = tunnel ? pulumi.all(tunnel.ends.map((e) => e.mtu.apply((m) => [e.host, m] as const))).apply(Object.fromEntries) : {};
/** The guide's test from each end: pings through the tunnel and UDP packets seen on the port. */
export const verification = tunnel?.checks ?? [];
/** The VMs as vm.sh reported them (pid, boot time). */
export const vms = local?.vms ?? [];
/** SSH key for the VMs (secret): `pulumi stack output sshPrivateKey --show-secrets`. */
export const sshPrivateKey = ec2 ? ec2.privateKey : local!.privateKey;
