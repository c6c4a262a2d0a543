import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { BootUnit } from "./bootUnit";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand } from "./hostState";
import { sh, shq, someLineStarts } from "./shell";
import { checkInt, throwIfInvalid } from "../lib/validate";
import { Encap, IPPROTO, TUNNEL_OPTION_DEFAULTS, problemText, tunnelOptionProblems } from "../lib/vocabulary";

export interface FouPortArgs {
    readonly host: TunnelHost;
    /** UDP port the kernel receives FOU packets on (the guide's 5555). */
    readonly port: number;
    /** `fou` (default): the port delivers one inner protocol; `gue`: any, named by the GUE header. */
    readonly encap?: Encap;
    /** Inner protocol of a `fou` port: 4 = IPIP (default), 41 = IPv6 (sit), 47 = GRE. */
    readonly ipproto?: number;
    /** Also add the port at every boot (a systemd unit), removed with the port. */
    readonly persist?: boolean;
    /** Resources to configure after (host preparation). */
    readonly dependsOn?: pulumi.Resource[];
}

/** What `ip fou add` is given after the port: `ipproto 4`, or `gue`. */
function binding(encap: Encap, ipproto: number): string {
    return encap === "gue" ? "gue" : sh`ipproto ${ipproto}`;
}

/**
 * `ip fou add port 5555 ipproto 4` / `ip fou del port 5555` (GUE: `ip fou add port 5556 gue`).
 * Apply adopts a port that already exists with the same binding and refuses one bound
 * otherwise; remove does nothing when the port is gone.
 */
export function fouPortObject(port: number, ipproto: number, encap: Encap = TUNNEL_OPTION_DEFAULTS.encap): HostObject {
    // `ip fou show` prints `port 5555 ipproto 4` or `port 5556 gue` (then maybe `local …`).
    const shown = "ip fou show 2>/dev/null";
    const present = someLineStarts(shown, encap === "gue" ? ["port", port, "gue"] : ["port", port, "ipproto", ipproto]);
    const taken = someLineStarts(shown, ["port", port]);
    return {
        apply: [
            `if ${present}; then :`,
            `elif ${taken}; then`,
            `  echo "fou-tunnel: UDP port ${port} on $(hostname) is already a FOU port bound otherwise: $(${sh`ip fou show`} | grep ${shq(`^port ${port} `)})" >&2; exit 1`,
            `else ${sh`ip fou add port ${port}`} ${binding(encap, ipproto)}; fi`,
        ].join("\n"),
        check: expect(present, `FOU port ${port} (${encap === "gue" ? "gue" : `ipproto ${ipproto}`}) is missing`),
        remove: `if ${present}; then ${sh`ip fou del port ${port}`}; fi`,
        // Two stacks may use one port with one binding: it goes with the last of them.
        shared: encap === "gue" ? `fou-port-${port}-gue` : `fou-port-${port}-ipproto-${ipproto}`,
    };
}

/** The receive side of FOU on one host: a UDP port decapsulated by the kernel. */
export class FouPort extends pulumi.ComponentResource {
    public readonly port: number;
    public readonly encap: Encap;
    /** The inner protocol of a `fou` port; undefined for GUE. */
    public readonly ipproto?: number;
    /** Changes whenever the port is recreated; dependants list it in their triggers. */
    public readonly instance: pulumi.Output<string>;
    public readonly command: command.remote.Command;

    constructor(name: string, args: FouPortArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const ipproto = args.ipproto ?? IPPROTO.ipip;
        const encap = args.encap ?? TUNNEL_OPTION_DEFAULTS.encap;
        throwIfInvalid([
            ...tunnelOptionProblems({ port: args.port, encap }, (f) => `FouPort ${name}: ${f}`).map(problemText),
            // Any IP protocol number: a FOU port may deliver to protocols no tunnel here carries.
            checkInt(`FouPort ${name}: ipproto`, ipproto, 1, 255),
        ]);
        super("fou:index:FouPort", name, {}, opts);
        this.port = args.port;
        this.encap = encap;
        this.ipproto = encap === "gue" ? undefined : ipproto;
        const object = fouPortObject(args.port, ipproto, encap);
        const step = objectCommand(
            `${name}-fou`,
            // A GUE port has no inner protocol: changing ipproto must not rebuild it.
            { host: args.host, object, triggers: encap === "gue" ? [args.port, "gue"] : [args.port, ipproto], what: `FOU port ${args.port}` },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.command = step.command;
        if (args.persist) {
            new BootUnit(
                `${name}-port`,
                { host: args.host, unit: `port-${args.port}`, description: `FOU port ${args.port}`, script: object.apply, dependsOn: [this.command] },
                { parent: this },
            );
        }
        this.instance = step.instance;
        this.registerOutputs({ port: this.port, instance: this.instance });
    }
}
