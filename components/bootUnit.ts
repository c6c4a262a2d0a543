import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import { TunnelHost } from "./host";
import { expect, HostObject, objectCommand, stateNamespace } from "./hostState";
import { sh } from "./shell";
import { throwIfInvalid } from "../lib/validate";

export interface BootUnitArgs {
    readonly host: TunnelHost;
    /** Unit name suffix: `fou-tunnel-<stack>-<unit>.service`, script `/etc/fou-tunnel/<namespace>/<unit>.sh`. */
    readonly unit: string;
    /** Shown in `systemctl status`. */
    readonly description: string;
    /** The steps to replay at boot: the same idempotent create scripts the components run. */
    readonly script: pulumi.Input<string>;
    readonly dependsOn?: pulumi.Resource[];
}

/** Where boot scripts live on the host. */
export const BOOT_DIR = "/etc/fou-tunnel";

/**
 * The unit of a stack: `fou-tunnel-dev-ftok2.service` for stack `dev` of project `fou-tunnel`
 * (`fou-tunnel-<project>.<stack>-…` for other projects), so two stacks on a host never share one.
 */
export function unitName(unit: string, namespace = stateNamespace()): string {
    return `fou-tunnel-${namespace.replace(/^fou-tunnel\./, "")}-${unit}.service`;
}

/**
 * Makes configuration survive a reboot: the apply steps of a tunnel end (or of a port) are
 * written to `/etc/fou-tunnel/<namespace>/<unit>.sh` and run by an enabled oneshot unit at boot,
 * as one would by hand with `systemctl enable --no-reload` (no daemon reload per unit). It is
 * not started now (the components just did the work). Remove disables the unit and removes both
 * files, so a destroyed tunnel stays gone after a reboot too.
 */
export function bootUnitObject(unit: string, description: string, body: string, namespace = stateNamespace()): HostObject {
    const dir = `${BOOT_DIR}/${namespace}`;
    const file = `${dir}/${unit}.sh`;
    const service = unitName(unit, namespace);
    const path = `/etc/systemd/system/${service}`;
    const unitText = [
        "[Unit]",
        `Description=fou-tunnel: ${description}`,
        // The underlay device must exist; modules come from systemd-modules-load or the script.
        "After=systemd-modules-load.service network.target",
        "Wants=network.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        `ExecStart=/bin/sh ${file}`,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
    const bootScript = ["#!/bin/sh", `# Written by fou-tunnel (${description}); removed when the tunnel is destroyed.`, "set -eu", body, ""].join("\n");
    const same = (text: string, at: string) => sh`[ "$(sha256sum < ${at} 2>/dev/null | cut -c1-64)" = ${sha256(text)} ]`;
    return {
        apply: [
            sh`mkdir -p ${dir}`,
            sh`printf '%s' ${bootScript} > ${`${file}.tmp`}`,
            sh`chmod 0755 ${`${file}.tmp`}`,
            sh`mv ${`${file}.tmp`} ${file}`,
            sh`printf '%s' ${unitText} > ${path}`,
            // Enabling links the unit from its file on disk; the manager reads it at the next
            // boot. A daemon-reload here (what a plain `enable` does) costs seconds per unit on a
            // full systemd and changes nothing now: the unit is not started.
            sh`systemctl enable --no-reload --quiet ${service}`,
        ].join("\n"),
        check: [
            expect(same(bootScript, file), `boot script ${file} is missing or changed`),
            expect(same(unitText, path), `unit ${path} is missing or changed`),
            expect(sh`systemctl is-enabled --quiet ${service}`, `unit ${service} is not enabled`),
        ].join("\n"),
        remove: [
            sh`if [ -e ${path} ]; then systemctl disable --no-reload --quiet ${service}; fi`,
            // Run at boot, it is active (RemainAfterExit): stopped, the manager drops it with
            // its file gone; never started, the manager has not loaded it. No reload either way.
            sh`if systemctl is-active --quiet ${service}; then systemctl stop ${service}; fi`,
            sh`rm -f ${path} ${file}`,
            sh`rmdir ${dir} 2>/dev/null || true; rmdir ${BOOT_DIR} 2>/dev/null || true`,
        ].join("\n"),
    };
}

function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

/** A tunnel object that comes back after a reboot without `pulumi up`. */
export class BootUnit extends pulumi.ComponentResource {
    public readonly command: command.remote.Command;

    constructor(name: string, args: BootUnitArgs, opts: pulumi.ComponentResourceOptions = {}) {
        throwIfInvalid([
            /^[a-z0-9][a-z0-9.-]{0,63}$/.test(args.unit) ? undefined : `BootUnit ${name}: unit must be 1-64 of a-z, 0-9, '.', '-' (got ${JSON.stringify(args.unit)})`,
        ]);
        super("fou:index:BootUnit", name, {}, opts);
        const object = pulumi.output(args.script).apply((body) => bootUnitObject(args.unit, args.description, body));
        const step = objectCommand(
            `${name}-boot`,
            // A changed script is rewritten in place (the create re-runs): nothing sits on a unit.
            { host: args.host, object, triggers: [args.unit], what: `boot unit ${unitName(args.unit)}` },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.command = step.command;
        this.registerOutputs({});
    }
}
