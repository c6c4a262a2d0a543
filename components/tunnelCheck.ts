import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import { hostCommand, TunnelHost } from "./host";
import { expect } from "./hostState";
import { hostLibrary } from "./hostLibrary";
import { script, sh } from "./shell";
import { canonicalIp } from "../lib/inet";

export interface TunnelCheckArgs {
    readonly host: TunnelHost;
    /** This end's GWIP (ping source) and the peer's (ping target). */
    readonly gwip: string;
    readonly peerGwip: string;
    /** Underlay addresses and the FOU port, to recognise the encapsulated packets. */
    readonly local: pulumi.Input<string>;
    readonly remote: pulumi.Input<string>;
    readonly port: number;
    /** Instances of the tunnel objects; the check runs again whenever one is recreated. */
    readonly after: pulumi.Input<string>[];
    /**
     * Instances of all the tunnel's objects: when one changes (say a drift probe was replaced
     * and the object rebuilt in place), the check runs again, as an update.
     */
    readonly rerunAfter?: pulumi.Input<string>[];
    readonly dependsOn?: pulumi.Resource[];
}

/** What one end saw: pings through the tunnel, and the UDP packets carrying them. */
export interface TunnelCheckResult {
    readonly from: string;
    readonly to: string;
    readonly sent: number;
    readonly received: number;
    /** Packets seen on the underlay device going to the peer's FOU port. */
    readonly udpToPeer: number;
    /** Packets seen on the underlay device coming from the peer to our FOU port. */
    readonly udpFromPeer: number;
    /** One captured line, e.g. `IP 198.51.100.151.40000 > 198.51.100.152.5555: UDP, length 84`. */
    readonly sample: string;
    /**
     * Rounds of three pings it took until all three came back (at most 40 s): 1 on a healthy
     * tunnel; more while the kernel still fails sends after ICMP errors from the peer.
     */
    readonly rounds: number;
    /** When the host measured it (UTC, ISO 8601): a result is only as fresh as its last run. */
    readonly measuredAt: string;
}

export interface CheckSettings {
    readonly device: string;
    readonly gwip: string;
    readonly peerGwip: string;
    readonly local: string;
    readonly remote: string;
    readonly port: number;
}

/**
 * The guide's test, from one end: `tcpdump -nn -i eth0 udp port 5555` while
 * `ping -I 10.10.10.1 10.10.10.2 -c 3` (IPv6 GWIPs of a sit tunnel alike). Prints a JSON result
 * and fails unless pings came back and UDP packets to and from the FOU port were captured. The
 * script is `components/sh/tunnel-check.sh`; the settings reach it as quoted variables.
 */
export function tunnelCheckScript(s: CheckSettings): string {
    return script(
        sh`fou_dev=${s.device}; fou_gwip=${s.gwip}; fou_peer=${s.peerGwip}; fou_local=${s.local}; fou_remote=${s.remote}; fou_port=${s.port}`,
        hostLibrary("tunnel-check.sh"),
    );
}

/**
 * What a refresh runs for a tunnel end (its drift probe): `ping -c 3 -I GWIP PEER_GWIP`, up to
 * three rounds a second apart. A healthy tunnel answers the first; a refresh soon after a repair
 * may meet the kernel still failing sends locally after ICMP errors from the peer (see
 * {@link tunnelCheckScript}), which ping counts as three errors at once and which passes within
 * a round or two. A tunnel that stays silent for three rounds (~9 s) is reported.
 */
export function tunnelProbeCheck(gwip: string, peerGwip: string): string {
    return expect(
        sh`r=0; until ping -n -q -c 3 -i 0.2 -W 2 -I ${gwip} ${peerGwip} >/dev/null 2>&1; do r=$((r + 1)); [ $r -lt 3 ] || break; sleep 1; done; [ $r -lt 3 ]`,
        `no ping reply from ${peerGwip} through the tunnel`,
    );
}

/** Proves one end of a tunnel passes packets, and that they travel as FOU on the underlay. */
export class TunnelCheck extends pulumi.ComponentResource {
    public readonly result: pulumi.Output<TunnelCheckResult>;
    public readonly command: command.remote.Command;

    constructor(name: string, args: TunnelCheckArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("fou:index:TunnelCheck", name, {}, opts);
        const settings = pulumi.all([args.host.device, args.local, args.remote]).apply(([device, local, remote]) => ({
            device,
            gwip: args.gwip,
            peerGwip: args.peerGwip,
            // As tcpdump prints them (IPv6 compressed).
            local: canonicalIp(local),
            remote: canonicalIp(remote),
            port: args.port,
        }));
        this.command = hostCommand(
            `${name}-check`,
            {
                host: args.host,
                scripts: pulumi
                    .all([settings, pulumi.all(args.rerunAfter ?? [])])
                    .apply(([s, objects]) => ({ create: `${tunnelCheckScript(s)}\n# objects ${createHash("sha256").update(objects.join("\n")).digest("hex")}` })),
                triggers: args.after,
                // A refresh pings again: a tunnel that stopped passing packets is checked (and so
                // reported) anew by the next up, never left standing on an old result.
                probe: { check: tunnelProbeCheck(args.gwip, args.peerGwip), object: `tunnel ${args.gwip} → ${args.peerGwip}` },
            },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.result = this.command.stdout.apply((out) => JSON.parse(out.trim().split("\n").pop() ?? "{}") as TunnelCheckResult);
        this.registerOutputs({ result: this.result });
    }
}
