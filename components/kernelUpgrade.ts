import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { hostStep, TunnelHost, withConnection } from "./host";
import { stateFile } from "./hostState";
import { fouUsableCheck, kernelInstallScripts, kernelPaths, kernelVerifyScripts } from "./kernelUpgradeScripts";
import { checkInt, throwIfInvalid } from "../lib/validate";
import { DEFAULT_REBOOT_TIMEOUT, MAX_REBOOT_TIMEOUT, MIN_REBOOT_TIMEOUT } from "../lib/vocabulary";

export { APT_NAME, BOOKWORM_KERNEL, ELREPO, fouUsableCheck, kernelInstallScripts, kernelPaths, kernelVerifyScripts, withSignedBy } from "./kernelUpgradeScripts";
export type { KernelInstallOptions, KernelPaths } from "./kernelUpgradeScripts";

/** Seconds one SSH dial of the verify step may take. */
export const VERIFY_PER_DIAL_TIMEOUT = 10;

export interface KernelUpgradeArgs {
    readonly host: TunnelHost;
    /** Modules the host's tunnels need (fou, ipip, sit, ip_gre): the new kernel must have them. */
    readonly modules: readonly string[];
    /** The kernel package; default per distribution (kernel-ml, linux-image-6.12-<arch>, linux-generic-hwe-<version>). */
    readonly package?: string;
    /** An apt source line to install the package from (a mirror or an offline repository). */
    readonly repository?: string;
    /** The repository's ASCII-armored public key. */
    readonly key?: string;
    /** Seconds to wait for SSH after the reboot; default 600, 60 to 3600. */
    readonly rebootTimeout?: number;
    /** Resources the install waits for (the previous host's upgrade: one host reboots at a time). */
    readonly after?: pulumi.Input<pulumi.Resource>[];
}

/**
 * How the verify step reaches a host that is rebooting. The genuine pulumi-resource-command
 * 1.2.1 retries a failed dial after 0.1 s × 1.5ⁿ (at most 5 s), each dial bounded by
 * perDialTimeout: with `ceil(timeout / 5) + 5` dials of at most 10 s each, a host that is back
 * within the timeout is reached, and one that never comes back fails within about twice it.
 * The command's create timeout (timeout + 120 s) is the hard bound.
 */
export function verifyDials(rebootTimeout: number): { perDialTimeout: number; dialErrorLimit: number; createTimeout: string } {
    return {
        perDialTimeout: VERIFY_PER_DIAL_TIMEOUT,
        dialErrorLimit: Math.ceil(rebootTimeout / 5) + 5,
        createTimeout: `${rebootTimeout + 120}s`,
    };
}

/**
 * Brings a host to a kernel with `fou`, the first half of the guide: when the running kernel
 * lacks fou (or the tunnels' modules, or `ip fou`), install a new one and reboot into it.
 * Opt-in per host (`kernel: {upgrade: true}` in the topology); nothing else ever reboots.
 *
 * On CentOS/RHEL 7, exactly the guide's commands:
 *
 *     rpm --import https://www.elrepo.org/RPM-GPG-KEY-elrepo.org
 *     yum install -y https://www.elrepo.org/elrepo-release-7.el7.elrepo.noarch.rpm
 *     yum --enablerepo=elrepo-kernel install -y kernel-ml
 *     grub2-set-default 0
 *     grub2-mkconfig -o /boot/grub2/grub.cfg
 *     yum -y update iproute          # when `ip fou` is missing
 *     reboot
 *
 * RHEL-family 8/9: ELRepo's el8/el9 kernel-ml with dnf, `grubby --set-default`. Debian:
 * `apt-get install linux-image-6.12-amd64` on bookworm (or the package given, from the archive or
 * a given repository and key), `update-grub`. Ubuntu: `linux-generic-hwe-<VERSION_ID>`.
 *
 * Two steps: `<name>-install` checks and, when needed, installs, records the old release and boot
 * id on the host, schedules the reboot and stops the SSH listener (the command returns first);
 * `<name>-verify` dials until the host is back (bounded by the reboot timeout) and checks the new
 * boot runs the installed kernel and loads fou, failing with both releases and the default boot
 * entry when it does not. Destroy never downgrades and never reboots: it only removes the step's
 * state file. A refresh sees a host that booted back into a kernel without fou (the install's
 * drift probe), and the next `up` repairs it.
 */
export class KernelUpgrade extends pulumi.ComponentResource {
    /** The kernel release before the upgrade (the running one when none was needed). */
    public readonly kernelBefore: pulumi.Output<string>;
    /** The kernel release running after it. */
    public readonly kernelAfter: pulumi.Output<string>;
    /** What the install did: `kernel=…`, `action=none|ip|reboot`, and for a reboot `to=…`, `bootId=…`. */
    public readonly installReport: pulumi.Output<string>;
    /** The install step (its delete removes only its state file). */
    public readonly install: command.remote.Command;
    /** The step everything else on the host waits for: the host is back, on a kernel with fou. */
    public readonly verify: command.remote.Command;

    constructor(name: string, args: KernelUpgradeArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const timeout = args.rebootTimeout ?? DEFAULT_REBOOT_TIMEOUT;
        throwIfInvalid([
            checkInt(`KernelUpgrade ${name}: rebootTimeout`, timeout, MIN_REBOOT_TIMEOUT, MAX_REBOOT_TIMEOUT),
            args.package === undefined || /^[a-z0-9][a-z0-9.+-]*$/.test(args.package) ? undefined : `KernelUpgrade ${name}: package ${JSON.stringify(args.package)} is not a package name`,
            args.repository === undefined || (!/[\x00-\x1f\x7f]/.test(args.repository) && /\bhttps?:\/\//.test(args.repository))
                ? undefined
                : `KernelUpgrade ${name}: repository must be one line with an http(s) URL`,
            ...args.modules.map((m) => (/^[a-z0-9_]{1,55}$/.test(m) ? undefined : `KernelUpgrade ${name}: module name ${JSON.stringify(m)} is not valid`)),
        ]);
        super("fou:index:KernelUpgrade", name, {}, opts);
        const label = `${args.host.name}: kernel upgrade`;
        const installName = `${name}-install`;
        const paths = kernelPaths(stateFile(installName, "kernel"), stateFile(installName, "log"));
        const install = hostStep(
            installName,
            {
                host: args.host,
                scripts: kernelInstallScripts({ modules: args.modules, package: args.package, repository: args.repository, key: args.key, paths, label }),
                triggers: ["kernel-upgrade"],
                probe: { check: fouUsableCheck(args.modules, paths), object: "kernel with fou" },
            },
            // Package installs take their time; a delete only removes two files.
            { parent: this, dependsOn: args.after, customTimeouts: { create: "30m", update: "30m", delete: "5m" } },
        ).command;
        const dials = verifyDials(timeout);
        const verify = hostStep(
            `${name}-verify`,
            {
                host: withConnection(args.host, { perDialTimeout: dials.perDialTimeout, dialErrorLimit: dials.dialErrorLimit }),
                scripts: kernelVerifyScripts(paths, label),
                // An install that ran again (and rebooted again) is checked again.
                triggers: [install.stdout],
            },
            { parent: this, dependsOn: [install], customTimeouts: { create: dials.createTimeout, update: dials.createTimeout, delete: "5m" } },
        ).command;
        const field = (key: string) => verify.stdout.apply((out) => new RegExp(`^${key}=(.*)$`, "m").exec(out ?? "")?.[1] ?? "");
        this.install = install;
        this.verify = verify;
        this.installReport = install.stdout;
        this.kernelBefore = field("kernelBefore");
        this.kernelAfter = field("kernelAfter");
        this.registerOutputs({ kernelBefore: this.kernelBefore, kernelAfter: this.kernelAfter, installReport: this.installReport });
    }
}
