import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { BootUnit } from "./bootUnit";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand } from "./hostState";
import { sh, shq } from "./shell";
import type { Family } from "../lib/inet";
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
    /** The underlay's family: 6 listens on IPv6 (`ip fou add … -6`); default 4. */
    readonly family?: Family;
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
 * Whether `ip fou show` has a line for port PORT of FAMILY, bound as BINDING (`ipproto 4`, `gue`;
 * none: any binding). Lines read `port 5555 ipproto 4` or `port 5556 gue`, with `-6` next on an
 * IPv6 port (then maybe `local …`): a port of each family may have the same number.
 */
function fouShown(port: number, family: Family, binding?: string): string {
    const head = binding === undefined ? `port ${port}` : `port ${port} ${binding}`;
    const n = head.split(" ").length;
    const joined = Array.from({ length: n }, (_, i) => `$w${i + 1}`).join(" ");
    // The family's mark: after the binding, the 4th word (gue) or the 5th (ipproto N).
    const marks = binding === undefined ? [4, 5] : [n + 1];
    const v6 = marks.map((i) => `[ "$w${i}" = -6 ]`).join(" || ");
    const familyTest = family === 6 ? `{ ${v6}; }` : `! { ${v6}; }`;
    return `ip fou show 2>/dev/null | (while read -r w1 w2 w3 w4 w5 _; do [ "${joined}" = ${shq(head)} ] && ${familyTest} && exit 0; done; exit 1)`;
}

/**
 * `ip fou add port 5555 ipproto 4` / `ip fou del port 5555` (GUE: `ip fou add port 5556 gue`;
 * an IPv6 underlay adds `-6` to both). Apply adopts a port that already exists with the same
 * binding and refuses one bound otherwise; remove does nothing when the port is gone.
 */
export function fouPortObject(port: number, ipproto: number, encap: Encap = TUNNEL_OPTION_DEFAULTS.encap, family: Family = 4): HostObject {
    const v6 = family === 6 ? " -6" : "";
    const bound = encap === "gue" ? "gue" : `ipproto ${ipproto}`;
    const present = fouShown(port, family, bound);
    const taken = fouShown(port, family);
    const what = `${family === 6 ? "IPv6 " : ""}FOU port ${port}`;
    return {
        apply: [
            `if ${present}; then :`,
            `elif ${taken}; then`,
            `  echo "fou-tunnel: UDP port ${port} on $(hostname) is already a${family === 6 ? "n IPv6" : ""} FOU port bound otherwise: $(${sh`ip fou show`} | grep ${shq(`^port ${port} `)})" >&2; exit 1`,
            `else ${sh`ip fou add port ${port}`} ${binding(encap, ipproto)}${v6}; fi`,
        ].join("\n"),
        check: expect(present, `${what} (${bound}) is missing`),
        remove: `if ${present}; then ${sh`ip fou del port ${port}`}${v6}; fi`,
        // Two stacks may use one port with one binding: it goes with the last of them.
        shared: `fou-port-${port}-${encap === "gue" ? "gue" : `ipproto-${ipproto}`}${family === 6 ? "-6" : ""}`,
    };
}

/** The receive side of FOU on one host: a UDP port decapsulated by the kernel. */
export class FouPort extends pulumi.ComponentResource {
    public readonly port: number;
    public readonly encap: Encap;
    /** The inner protocol of a `fou` port; undefined for GUE. */
    public readonly ipproto?: number;
    /** The family it listens on: 6 for `-6`. */
    public readonly family: Family;
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
        const family = args.family ?? 4;
        super("fou:index:FouPort", name, {}, opts);
        this.port = args.port;
        this.family = family;
        this.encap = encap;
        this.ipproto = encap === "gue" ? undefined : ipproto;
        const object = fouPortObject(args.port, ipproto, encap, family);
        const step = objectCommand(
            `${name}-fou`,
            // A GUE port has no inner protocol: changing ipproto must not rebuild it.
            { host: args.host, object, triggers: [...(encap === "gue" ? [args.port, "gue"] : [args.port, ipproto]), ...(family === 6 ? ["-6"] : [])], what: `FOU port ${args.port}` },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.command = step.command;
        if (args.persist) {
            new BootUnit(
                `${name}-port`,
                { host: args.host, unit: `port-${args.port}${family === 6 ? "-6" : ""}`, description: `${family === 6 ? "IPv6 " : ""}FOU port ${args.port}`, script: object.apply, dependsOn: [this.command] },
                { parent: this },
            );
        }
        this.instance = step.instance;
        this.registerOutputs({ port: this.port, instance: this.instance });
    }
}
