import type { CommandScripts } from "./host";
import { expect, labelLine, removeEmptyStateDirs, STATE_ROOT, undoLibrary, undoOnFailure } from "./hostState";
import { fileHolds, script, sh } from "./shell";

/** The forwarding value the host had before any stack changed it; shared by all stacks. */
const FORWARD_ORIG = `${STATE_ROOT}/ip_forward.orig`;
/** Marks our line in /etc/sysctl.conf; plain text, so it is also its own sed pattern. */
const SYSCTL_MARK = "# fou-tunnel ip_forward";
const SYSCTL_LINE = "net.ipv4.ip_forward = 1";

/**
 * `net.ipv4.ip_forward = 1` the guide's way (a line in /etc/sysctl.conf, applied now). Each
 * resource that wants forwarding holds a claim file (`claimFile`); the value found before the
 * first claim is kept host-wide, and the last claim's delete restores it and removes the line,
 * so two stacks on one host never undo each other's forwarding. A create that fails before its
 * claim is recorded undoes what it did, as its delete would.
 */
export function ipForwardScripts(claimFile: string, label?: string): CommandScripts {
    const claims = `${STATE_ROOT}/*/*.ip_forward`;
    const release = [
        sh`rm -f ${claimFile}`,
        `if ! ls ${claims} >/dev/null 2>&1; then`,
        "  if [ -f /etc/sysctl.conf ]; then sed -i '/^# fou-tunnel ip_forward$/{N;d}' /etc/sysctl.conf; fi",
        sh`  if [ -f ${FORWARD_ORIG} ]; then sysctl -q -w "net.ipv4.ip_forward=$(cat ${FORWARD_ORIG})"; rm -f ${FORWARD_ORIG}; fi`,
        "fi",
        removeEmptyStateDirs(claimFile),
    ];
    return {
        library: undoLibrary(),
        create: script(
            labelLine(label),
            ...undoOnFailure({ undo: release }),
            sh`[ -e ${claimFile} ] || fou_changing=1`,
            sh`mkdir -p ${claimFile.slice(0, claimFile.lastIndexOf("/"))}`,
            sh`[ -f ${FORWARD_ORIG} ] || cat /proc/sys/net/ipv4/ip_forward > ${FORWARD_ORIG}`,
            sh`touch ${claimFile}`,
            "touch /etc/sysctl.conf",
            sh`grep -qxF ${SYSCTL_MARK} /etc/sysctl.conf || printf '%s\n%s\n' ${SYSCTL_MARK} ${SYSCTL_LINE} >> /etc/sysctl.conf`,
            "sysctl -q -w net.ipv4.ip_forward=1",
            sh`echo "previous=$(cat ${FORWARD_ORIG})"`,
        ),
        delete: script(...release),
    };
}

/** The drift check of forwarding: on now, and our line in /etc/sysctl.conf for the next boot. */
export function ipForwardOn(): string {
    return [
        expect(fileHolds("/proc/sys/net/ipv4/ip_forward", 1), "net.ipv4.ip_forward is not 1"),
        expect(sh`grep -qxF ${SYSCTL_LINE} /etc/sysctl.conf`, `/etc/sysctl.conf lacks "${SYSCTL_LINE}"`),
    ].join("\n");
}
