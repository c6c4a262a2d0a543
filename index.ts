/**
 * fou-tunnel: the FOU guide's IPIP-over-UDP tunnel between two hosts, declared — or any topology
 * of hosts and tunnels read from a YAML file (`fou-tunnel:topology`).
 *
 * `pulumi up` on the default (local) stack boots new-kernel VMs on this machine and builds the
 * tunnels between them; `pulumi destroy` undoes every step on the VMs, then removes them.
 */
import * as pulumi from "@pulumi/pulumi";
import { FouTopology } from "./components/fouTopology";
import { withConnection } from "./components/host";
import { loadSettings } from "./config";
import { LocalVms } from "./hosts/local";
import { SshHosts } from "./hosts/ssh";

const settings = loadSettings(new pulumi.Config());
const topo = settings.topology;

// Loaded only for an aws stack: @pulumi/aws takes ~0.3 s to load, on every run of the program.
const awsHosts = (): typeof import("./hosts/aws") => require("./hosts/aws");
const ec2 = settings.aws
    ? new (awsHosts().AwsHosts)("aws", {
          // EC2 drops forwarded packets unless the source/destination check is off.
          settings: { ...settings.aws, routesBeyondGwips: settings.aws.routesBeyondGwips || topo.tunnels.some((t) => t.ends.some((e) => e.routes.length > 0)) },
          hostNames: topo.hosts.map((h) => h.name),
          udpRules: topo.tunnels.flatMap((t) => [
              { to: t.ends[0].host, from: t.ends[1].host, port: t.port },
              { to: t.ends[1].host, from: t.ends[0].host, port: t.port },
          ]),
      })
    : undefined;
// Machines that exist already: the stack logs in to them, and owns none of them.
const ssh = settings.ssh
    ? new SshHosts("ssh", {
          settings: settings.ssh,
          privateKey: settings.ssh.privateKey === undefined ? undefined : pulumi.secret(settings.ssh.privateKey),
          perDialTimeout: settings.sshDialTimeout,
      })
    : undefined;
const local = ec2 || ssh
    ? undefined
    : new LocalVms("local", { settings: settings.local, stackId: `${pulumi.getProject()}/${pulumi.getStack()}` });
const dialTimeout = settings.sshDialTimeout;
const hostList = (ec2?.hosts ?? ssh?.hosts ?? local!.hosts)
    .map((h) => (dialTimeout === undefined ? h : withConnection(h, { perDialTimeout: dialTimeout })))
    // An explicit opt-in for unreachable hosts: their objects are forgotten, not undone, on removal.
    .map((h) => (settings.forgetHosts.includes(h.name) ? { ...h, retainOnDelete: true } : h));
const hosts = Object.fromEntries(hostList.map((h) => [h.name, h]));

const tunnels = settings.tunnel ? new FouTopology("fou", { topology: topo, hosts, check: settings.check }) : undefined;

/** Per tunnel, per host: one value of each end. */
function perEnd<T>(pick: (e: { host: string; ifname: string; gwip: string }) => T): Record<string, Record<string, T>> {
    return Object.fromEntries(
        topo.tunnels.map((t) => [t.name, Object.fromEntries(t.ends.map((e) => [e.host, pick(e)]))]),
    );
}

/** Where the hosts and tunnels came from. */
export const topology = topo.source;
/** Host name → underlay address. */
export const underlay = ec2 ? ec2.privateIps : ssh ? ssh.underlay : Object.fromEntries(settings.local.vms.map((vm) => [vm.name, vm.address]));
/** Host name → public address (aws stacks). */
export const publicIps = ec2?.publicIps ?? {};
/** How to log in to each host, with the key from `sshPrivateKey` saved to the file named. */
export const sshCommands =
    ec2?.sshCommands ?? ssh?.sshCommands ?? Object.fromEntries(settings.local.vms.map((vm) => [vm.name, `ssh -i fou-key.pem root@${vm.address}`]));
/** Tunnel → host → GWIP (`k1-k2`: 10.10.10.1 on k1, 10.10.10.2 on k2 by default). */
export const gwips = tunnels ? perEnd((e) => e.gwip) : {};
/** Tunnel → host → tunnel interface (`ftok2` on k1, `ftok1` on k2). */
export const interfaces = tunnels ? perEnd((e) => e.ifname) : {};
/** Tunnel → host → MTU, as the kernel set it (or as configured). */
export const mtu = tunnels
    ? pulumi
          .all(Object.entries(tunnels.info).flatMap(([name, t]) => t.ends.map((e) => e.mtu.apply((m) => [name, e.host, m] as const))))
          .apply((rows) => {
              const out: Record<string, Record<string, number>> = {};
              for (const [name, host, m] of rows) (out[name] ??= {})[host] = m;
              return out;
          })
    : {};
/** Tunnel → protocol, encapsulation, port and options, as built. */
export const tunnelSpecs = tunnels
    ? Object.fromEntries(
          topo.tunnels.map((t) => [
              t.name,
              { hosts: t.ends.map((e) => e.host), protocol: t.protocol, encap: t.encap, port: t.port, sport: t.sport, csum: t.csum, persist: t.persist, routes: Object.fromEntries(t.ends.map((e) => [e.host, e.routes])) },
          ]),
      )
    : {};
/** Receive ports per host, with the tunnels sharing each. */
export const ports = tunnels ? topo.ports : [];
/** The guide's test from each end of each tunnel: pings through it and UDP packets seen on the port. */
export const verification = tunnels?.checks ?? [];
/** Host name → kernel release before and after its upgrade (hosts with `kernel: {upgrade: true}`). */
export const kernels = tunnels?.kernels ?? {};
/** The VMs as vm.sh reported them (pid, boot time). */
export const vms = local?.vms ?? [];
/** SSH key for the hosts (secret): `pulumi stack output sshPrivateKey --show-secrets`. */
export const sshPrivateKey = ec2 ? ec2.privateKey : local?.privateKey; // ssh stacks: the key is the user's own
