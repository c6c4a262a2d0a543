import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { CommandScripts, hostCommand, TunnelHost } from "./host";
import { printInstanceId, script, sh } from "./shell";
import { checkInt, checkPort, throwIfInvalid } from "./validate";

export interface FouPortArgs {
    readonly host: TunnelHost;
    /** UDP port the kernel receives FOU packets on (the guide's 5555). */
    readonly port: number;
    /** Inner protocol the port delivers to: 4 = IPIP (default), 41 = IPv6 (sit), 47 = GRE. */
    readonly ipproto?: number;
    /** Resources to configure after (host preparation). */
    readonly dependsOn?: pulumi.Resource[];
}

/**
 * `ip fou add port 5555 ipproto 4` / `ip fou del port 5555 ipproto 4`. Create adopts a port
 * that already exists with the same protocol (a leftover of a crashed run); delete does nothing
 * when the port is gone.
 */
export function fouPortScripts(port: number, ipproto: number): CommandScripts {
    const present = sh`ip fou show 2>/dev/null | grep -Eq ${`^port ${port} ipproto ${ipproto}( |$)`}`;
    return {
        create: script(
            `if ${present}; then echo "adopted"; else ${sh`ip fou add port ${port} ipproto ${ipproto}`}; fi`,
            printInstanceId,
        ),
        delete: script(`if ${present}; then ${sh`ip fou del port ${port} ipproto ${ipproto}`}; fi`),
    };
}

/** The receive side of FOU on one host: a UDP port decapsulated by the kernel. */
export class FouPort extends pulumi.ComponentResource {
    public readonly port: number;
    /** Changes whenever the port is recreated; dependants list it in their triggers. */
    public readonly instance: pulumi.Output<string>;
    public readonly command: command.remote.Command;

    constructor(name: string, args: FouPortArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const ipproto = args.ipproto ?? 4;
        throwIfInvalid([checkPort(`FouPort ${name}: port`, args.port), checkInt(`FouPort ${name}: ipproto`, ipproto, 1, 255)]);
        super("fou:index:FouPort", name, {}, opts);
        this.port = args.port;
        this.command = hostCommand(
            `${name}-fou`,
            { host: args.host, scripts: fouPortScripts(args.port, ipproto), triggers: [args.port, ipproto] },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.instance = this.command.stdout;
        this.registerOutputs({ port: this.port, instance: this.instance });
    }
}
