import type { CommandScripts } from "./host";
import { hostLibrary } from "./hostLibrary";
import { expect, labelLine, stateRootOf } from "./hostState";
import { fileHolds, sh } from "./shell";

/** Our line in /etc/sysctl.conf (components/sh/ip-forward.sh writes it under its mark). */
const SYSCTL_LINE = "net.ipv4.ip_forward = 1";

/**
 * `net.ipv4.ip_forward = 1` the guide's way (a line in /etc/sysctl.conf, applied now). Each
 * resource that wants forwarding holds a claim file (`claimFile`); the value found before the
 * first claim is kept host-wide, and the last claim's delete restores it and removes the line,
 * so two stacks on one host never undo each other's forwarding. A create that fails before its
 * claim is recorded undoes what it did, as its delete would. The script is
 * `components/sh/ip-forward.sh`.
 */
export function ipForwardScripts(claimFile: string, label?: string): CommandScripts {
    const root = stateRootOf(claimFile);
    const vars = sh`fou_claim=${claimFile}; fou_root=${root}; fou_orig=${`${root}/ip_forward.orig`}`;
    return {
        library: `${hostLibrary("undo.sh")}\n${hostLibrary("ip-forward.sh")}`,
        create: ["set -eu", vars, labelLine(label), "fou_forward_create"].join("\n"),
        delete: ["set -eu", vars, "fou_forward_release"].join("\n"),
    };
}

/** The drift check of forwarding: on now, and our line in /etc/sysctl.conf for the next boot. */
export function ipForwardOn(): string {
    return [
        expect(fileHolds("/proc/sys/net/ipv4/ip_forward", 1), "net.ipv4.ip_forward is not 1"),
        expect(sh`grep -qxF ${SYSCTL_LINE} /etc/sysctl.conf`, `/etc/sysctl.conf lacks "${SYSCTL_LINE}"`),
    ].join("\n");
}
