import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { hostCommand, TunnelHost } from "./host";
import { ipForwardOn, ipForwardScripts } from "./hostPrepForward";
import { kernelScripts, modulesLoaded } from "./hostPrepModules";
import { stateFile } from "./hostState";
import { throwIfInvalid } from "../lib/validate";
import { MODULES } from "../lib/vocabulary";

// The steps' scripts, one file each: the kernel's checks and modules, IP forwarding.
export { ipForwardOn, ipForwardScripts } from "./hostPrepForward";
export { kernelScripts, modulesLoaded } from "./hostPrepModules";

export interface HostPrepArgs {
    readonly host: TunnelHost;
    /**
     * Modules to load after the kernel check; default `fou`, `ipip`. Over an IPv6 underlay the
     * tunnels need others: `tunnelModules(protocol, 6)` (`fou`, `fou6`, `ip6_tunnel`).
     */
    readonly modules?: readonly string[];
    /** Turn on `net.ipv4.ip_forward` (persisted in /etc/sysctl.conf); default true. */
    readonly ipForward?: boolean;
}

/**
 * Prepares a host for FOU tunnels: kernel check and modules, then IP forwarding.
 * Every tunnel command on the host depends on it, so destroy undoes it last.
 */
export class HostPrep extends pulumi.ComponentResource {
    /** `kernel=<release>` and `modules=<the modules it keeps loaded>`. */
    public readonly kernelReport: pulumi.Output<string>;
    /** The resource later steps depend on: the kernel check and modules. */
    public readonly ready: pulumi.Resource;
    /** `net.ipv4.ip_forward = 1`, when asked for; nothing waits for it. */
    public readonly ipForward?: command.remote.Command;

    constructor(name: string, args: HostPrepArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const modules = args.modules ?? MODULES.ipip;
        throwIfInvalid([
            modules.length === 0 ? `HostPrep ${name}: modules must not be empty` : undefined,
            ...modules.map((m) =>
                /^[a-z0-9_]{1,55}$/.test(m) ? undefined : `HostPrep ${name}: module name ${JSON.stringify(m)} is not valid`,
            ),
        ]);
        super("fou:index:HostPrep", name, {}, opts);

        const kernel: command.remote.Command = hostCommand(
            `${name}-kernel`,
            // The module list is no trigger: a new list updates in place (create runs again).
            {
                host: args.host,
                scripts: kernelScripts(modules, stateFile(`${name}-kernel`, "modules"), `${args.host.name}: kernel modules`),
                triggers: [],
                probe: { check: modulesLoaded(modules), object: `kernel modules ${modules.join(", ")}` },
            },
            { parent: this },
        );
        if (args.ipForward ?? true) {
            this.ipForward = hostCommand(
                `${name}-ip-forward`,
                {
                    host: args.host,
                    scripts: ipForwardScripts(stateFile(`${name}-ip-forward`, "ip_forward"), `${args.host.name}: net.ipv4.ip_forward`),
                    triggers: ["net.ipv4.ip_forward=1"],
                    probe: { check: ipForwardOn(), object: "net.ipv4.ip_forward" },
                },
                // Independent of the modules and of the tunnel objects: it runs beside them.
                { parent: this },
            );
        }
        this.kernelReport = kernel.stdout;
        this.ready = kernel;
        this.registerOutputs({ kernelReport: this.kernelReport });
    }
}
