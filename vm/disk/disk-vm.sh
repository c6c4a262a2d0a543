#!/usr/bin/env bash
# disk-vm.sh — one qemu VM that boots the cached disk image (build-disk-image.sh) through
# SeaBIOS and GRUB like a real host, from its own qcow2 overlay (the base image is never
# written), so it can install a kernel and reboot into it. Its per-VM files (hostname, SSH host
# key, authorized key, address) reach it on a seed disk: a tar archive attached read-only as a
# second virtio disk, which the image's fou-seed.service unpacks at every boot, before the
# network and sshd start. Nothing is mounted on this machine.
set -euo pipefail

PROG=disk-vm.sh
# shellcheck source=vm/disk/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"
# shellcheck source=vm/disk/disk-vm-start.sh
. "$DISK_DIR/disk-vm-start.sh"

usage() {
	cat <<EOF
Usage:
  $PROG start --name NAME --address IP/PREFIX --bridge BRIDGE --tap TAP --mac MAC \\
              --state-dir DIR --authorized-key 'ssh-ed25519 AAAA… comment' \\
              [--host-key FILE] [--image DIR] [--memory 1024] [--timeout 300]
  $PROG stop --state-dir DIR
  $PROG status --state-dir DIR

start   Creates DIR (0700) with the VM's qcow2 overlay on IMAGE/disk.raw (default image:
        build-disk-image.sh, which builds it if needed), its seed (the host key from --host-key,
        an unencrypted OpenSSH ed25519 private key, else a new one; the authorized key for root
        and admin; a systemd-networkd file for IP/PREFIX on the NIC with MAC, no gateway), a tap
        on BRIDGE, and starts qemu -daemonize (console in DIR/console.log). Waits up to --timeout
        seconds until sshd answers with that host key, writes DIR/known_hosts and prints one
        JSON line: {"name","pid","address","prefixLength","mac","tap","bridge","stateDir",
        "console","knownHosts","hostKey","bootSeconds","image","kernelRelease"}.
        A VM already running from DIR is left as it is and its JSON printed again.
        On failure it stops qemu, deletes the tap, prints the console's last lines, exits 1.
        A reboot inside the guest keeps the qemu process (no -no-reboot) and the seed.
stop    Kills the qemu of DIR (by its pid file, after checking its command line), deletes its
        tap and removes DIR. Anything already gone is fine.
status  Prints DIR/vm.json and exits 0 if its qemu runs; exits 1 otherwise.
Needs root (tap devices). Env: FOU_CACHE.
EOF
}

# The pid of DIR's qemu if it runs (its command line names DIR's overlay), else nothing.
qemu_pid() { # DIR
	local pid cmd
	[[ -s $1/qemu.pid ]] || return 0
	read -r pid <"$1/qemu.pid" || true
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
	[[ $cmd == qemu-system-x86_64* && $cmd == *"file=$1/disk.qcow2,"* ]] && printf '%s\n' "$pid"
}

delete_tap() { # TAP: tolerates absent; refuses a non-tap or one still open
	local tap=$1
	link_exists "$tap" || return 0
	[[ -e /sys/class/net/$tap/tun_flags ]] || die "$tap is not a tap device; not deleting it"
	tap_in_use "$tap" && die "tap $tap is still open by some process; not deleting it"
	ip link del dev "$tap" 2>/dev/null || ! link_exists "$tap" || die "cannot delete tap $tap"
}

kill_qemu() { # DIR
	local pid i
	pid=$(qemu_pid "$1")
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	die "qemu (pid $pid) does not exit"
}

parse_dir() { # sets VM_DIR
	VM_DIR=''
	parse_options --state-dir=VM_DIR -- "$@"
	[[ -n $VM_DIR ]] || usage_die "--state-dir is required"
	VM_DIR=$(readlink -m -- "$VM_DIR")
}

cmd_stop() {
	parse_dir "$@"
	need_root
	[[ -d $VM_DIR ]] || {
		log "$VM_DIR: already gone"
		return 0
	}
	[[ -e $VM_DIR/disk.qcow2 || -e $VM_DIR/tap || -z $(ls -A "$VM_DIR") ]] ||
		die "$VM_DIR is no VM state dir; not removing it"
	kill_qemu "$VM_DIR"
	if [[ -s $VM_DIR/tap ]]; then delete_tap "$(<"$VM_DIR/tap")"; fi
	rm -rf -- "$VM_DIR"
	log "stopped and removed $VM_DIR"
}

cmd_status() {
	parse_dir "$@"
	[[ -n $(qemu_pid "$VM_DIR") ]] || return 1
	cat "$VM_DIR/vm.json" 2>/dev/null || true
}

run_subcommand start stop status -- "$@"
