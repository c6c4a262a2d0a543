#!/usr/bin/env bash
# vm.sh — start/stop/status of one qemu VM booting the new-kernel image (build-image.sh) with
# sshd, a static address on a host bridge (net.sh) and the caller's authorized SSH key. The root
# is an overlay of the image's read-only root.img and a tmpfs; /etc and /var/lib are overlays on
# a small per-VM disk, so they survive a reboot of the guest (qemu resets instead of exiting; see
# fou-vm-initrd). Images with the root as one cpio (build-cloud-image.sh) boot it in RAM.
set -euo pipefail

PROG=vm.sh
HERE=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")

usage() {
	cat <<EOF
Usage:
  $PROG start --name NAME --address IP/PREFIX --bridge BRIDGE --tap TAP --mac MAC
              --state-dir DIR --authorized-key 'ssh-ed25519 AAAA... comment'
              [--host-key FILE|-] [--memory MiB] [--no-fou] [--no-persist] [--image DIR]
              [--timeout SECONDS] [--cloud-seed DIR]
  $PROG stop --state-dir DIR [--tap TAP]
  $PROG status --state-dir DIR

start   Boots the VM (qemu -daemonize) on a new tap attached to BRIDGE, waits until its sshd
        answers on IP:22, and prints one JSON line:
        {"name","pid","address","prefixLength","tap","bridge","mac","stateDir","bootSeconds",
         "accel","memoryMiB","kernelRelease","noFou","persist","hostKey"}
        If the VM of DIR already runs with the same settings (a start that was interrupted, or
        a second start), it is adopted: start waits for its SSH if need be and prints the JSON.
        One with other settings, or whose tap is not on BRIDGE, is stopped and started anew.
        On failure it kills qemu, deletes the tap, prints the console's last lines, exits 1.
        A reboot from inside the guest resets it in the same qemu (same pid, host key, address);
        /etc and /var/lib keep their changes across it (a 256 MiB ext4 disk, DIR/persist.img).
        A guest kernel panic makes qemu exit; a poweroff too.
        --host-key the VM's SSH host key: an OpenSSH ed25519 private key file (- reads stdin);
                   default: a fresh one per start
        --memory   guest RAM in MiB (default 384, at least 256; an image whose root is a
                   cpio in RAM, build-cloud-image.sh's, needs at least 600)
        --no-fou   make fou/fou6 unusable in this VM (simulates a kernel without fou)
        --no-persist  no persistent disk: what the guest writes anywhere is lost at a reboot
        --image    image directory (default: the output of build-image.sh, built if needed)
        --timeout  seconds to wait for SSH (default \${FOU_BOOT_TIMEOUT:-120})
        --cloud-seed  a cloud-init NoCloud seed: DIR/user-data and DIR/meta-data go to
                   /var/lib/cloud/seed/nocloud/ in the VM (for an image of build-cloud-image.sh;
                   the hostKey reported is the one vm.sh put in, which user data may replace)
stop    Kills the VM's qemu (by the PID in DIR, after checking its command line), deletes its
        tap and removes DIR. Anything already gone is fine.
status  Exit 0 and print the JSON if the VM of DIR is running, booted and on its bridge;
        exit 1 (saying why) if not.

Environment: FOU_ACCEL=kvm|tcg (default: kvm if a probe boot works, else tcg),
FOU_BOOT_TIMEOUT, FOU_CACHE (see build-image.sh). Needs root.
EOF
}

# The parts, each sourced from this script's own directory: the shared helpers, the image
# layouts, the state dir, qemu and taps, the accelerator, and one file per subcommand.
# shellcheck source=vm/lib.sh
. "$HERE/lib.sh"
# shellcheck source=vm/vm-image.sh
. "$HERE/vm-image.sh"
# shellcheck source=vm/vm-state.sh
. "$HERE/vm-state.sh"
# shellcheck source=vm/vm-qemu.sh
. "$HERE/vm-qemu.sh"
# shellcheck source=vm/vm-accel.sh
. "$HERE/vm-accel.sh"
# shellcheck source=vm/vm-start.sh
. "$HERE/vm-start.sh"
# shellcheck source=vm/vm-boot.sh
. "$HERE/vm-boot.sh"
# shellcheck source=vm/vm-stop.sh
. "$HERE/vm-stop.sh"
# shellcheck source=vm/vm-status.sh
. "$HERE/vm-status.sh"

run_subcommand start stop status -- "$@"
