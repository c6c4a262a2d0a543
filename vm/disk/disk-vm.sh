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

parse_start() { # sets the VM_* variables
	VM_NAME='' VM_ADDR='' VM_BRIDGE='' VM_TAP='' VM_MAC='' VM_DIR='' VM_KEY='' VM_HOSTKEY=''
	VM_IMAGE='' VM_MEMORY=1024 VM_TIMEOUT=300
	while (($#)); do
		(($# >= 2)) || usage_die "$1 needs a value"
		case $1 in
		--name) VM_NAME=$2 ;;
		--address) VM_ADDR=$2 ;;
		--bridge) VM_BRIDGE=$2 ;;
		--tap) VM_TAP=$2 ;;
		--mac) VM_MAC=${2,,} ;;
		--state-dir) VM_DIR=$2 ;;
		--authorized-key) VM_KEY=$2 ;;
		--host-key) VM_HOSTKEY=$2 ;;
		--image) VM_IMAGE=$2 ;;
		--memory) VM_MEMORY=$2 ;;
		--timeout) VM_TIMEOUT=$2 ;;
		*) usage_die "unknown argument: $1" ;;
		esac
		shift 2
	done
	[[ $VM_NAME =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || usage_die "--name must be a host name, got '$VM_NAME'"
	[[ $VM_ADDR =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]{1,2})$ ]] || usage_die "--address must be IPv4/PREFIX"
	[[ $VM_BRIDGE =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage_die "--bridge must be an interface name"
	[[ $VM_TAP =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage_die "--tap must be an interface name"
	[[ $VM_MAC =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || usage_die "--mac must be xx:xx:xx:xx:xx:xx"
	[[ -n $VM_DIR ]] || usage_die "--state-dir is required"
	[[ $VM_KEY =~ ^(ssh-|ecdsa-|sk-) ]] || usage_die "--authorized-key must be an OpenSSH public key line"
	[[ -z $VM_HOSTKEY || -r $VM_HOSTKEY ]] || usage_die "--host-key must be a readable file"
	if ! [[ $VM_MEMORY =~ ^[0-9]+$ ]] || ((VM_MEMORY < 512)); then usage_die "--memory must be at least 512 (MiB)"; fi
	[[ $VM_TIMEOUT =~ ^[0-9]+$ ]] || usage_die "--timeout must be seconds"
	VM_DIR=$(readlink -m -- "$VM_DIR")
}

# Everything fou-seed.service installs in the guest, as a tar archive (the seed disk).
write_seed() {
	local seed="$VM_DIR/seed"
	rm -rf -- "$seed"
	mkdir -m 0700 "$seed"
	printf '%s\n' "$VM_NAME" >"$seed/hostname"
	if [[ -n $VM_HOSTKEY ]]; then
		install -m 0600 "$VM_HOSTKEY" "$seed/ssh_host_ed25519_key"
		ssh-keygen -y -f "$seed/ssh_host_ed25519_key" >"$seed/ssh_host_ed25519_key.pub" ||
			die "--host-key is not an unencrypted OpenSSH private key"
	else
		ssh-keygen -q -t ed25519 -N '' -C "root@$VM_NAME" -f "$seed/ssh_host_ed25519_key"
	fi
	[[ $(cut -d' ' -f1 "$seed/ssh_host_ed25519_key.pub") == ssh-ed25519 ]] || die "the host key must be ed25519"
	printf '%s\n' "$VM_KEY" >"$seed/authorized_keys"
	cat >"$seed/network" <<-EOF
		# Written by disk-vm.sh through the seed disk: the test bridge's address, no gateway.
		[Match]
		MACAddress=$VM_MAC

		[Network]
		Address=$VM_ADDR
		LinkLocalAddressing=no
		IPv6AcceptRA=no
	EOF
	tar --format=ustar --owner=0 --group=0 -C "$seed" -cf "$VM_DIR/seed.tar" .
	chmod 0600 "$VM_DIR/seed.tar"
	cut -d' ' -f1,2 "$seed/ssh_host_ed25519_key.pub" >"$VM_DIR/host-key.pub"
	rm -rf -- "$seed"
}

make_tap() {
	if link_exists "$VM_TAP"; then
		log "removing leftover tap $VM_TAP"
		delete_tap "$VM_TAP"
	fi
	ip tuntap add dev "$VM_TAP" mode tap || die "cannot create tap $VM_TAP"
	printf '%s\n' "$VM_TAP" >"$VM_DIR/tap"
	ip link set dev "$VM_TAP" master "$VM_BRIDGE" || die "cannot attach $VM_TAP to $VM_BRIDGE"
	ip link set dev "$VM_TAP" up || die "cannot set $VM_TAP up"
}

# The overlay is the first virtio disk (vda, the install device GRUB's debconf names) and the
# only boot device: without bootindex SeaBIOS may pick the seed disk as drive 0x80 and find no
# boot sector there.
run_qemu() {
	rm -f -- "$VM_DIR/console.log" "$VM_DIR/qemu.pid"
	(
		close_fds
		exec qemu-system-x86_64 -name "$VM_NAME" \
			-machine pc -accel tcg,thread=single,tb-size=128 -cpu qemu64,+rdrand \
			-m "$VM_MEMORY" -smp 1 -nodefaults -display none \
			-serial "file:$VM_DIR/console.log" \
			-drive "file=$VM_DIR/disk.qcow2,if=none,id=root,format=qcow2" \
			-device virtio-blk-pci,drive=root,bootindex=0 \
			-drive "file=$VM_DIR/seed.tar,if=none,id=seed,format=raw,readonly=on" \
			-device virtio-blk-pci,drive=seed,serial=fou-seed \
			-netdev "tap,id=n0,ifname=$VM_TAP,script=no,downscript=no,vnet_hdr=off" \
			-device "virtio-net-pci,netdev=n0,mac=$VM_MAC" \
			-daemonize -pidfile "$VM_DIR/qemu.pid"
	) </dev/null >"$VM_DIR/qemu.err" 2>&1 || {
		cat "$VM_DIR/qemu.err" >&2
		return 1
	}
}

# Waits until sshd on IP answers with the seed's host key (so the seed was applied).
wait_ssh() { # IP DEADLINE
	local want got
	want=$(<"$VM_DIR/host-key.pub")
	while ((SECONDS < $2)); do
		[[ -n $(qemu_pid "$VM_DIR") ]] || {
			log "qemu exited"
			return 1
		}
		got=$(ssh-keyscan -T 3 -t ed25519 "$1" 2>/dev/null | awk '{ print $2, $3 }') || true
		if [[ -n $got ]]; then
			[[ $got == "$want" ]] && return 0
			log "sshd on $1 answers with another host key: $got"
			return 1
		fi
		sleep 1
	done
	log "no SSH on $1 after the timeout"
	return 1
}

fail_start() {
	log "start failed; the console's last lines:"
	tail -n 30 "$VM_DIR/console.log" 2>/dev/null | sed 's/^/  | /' >&2 || true
	kill_qemu "$VM_DIR" || true
	if [[ -s $VM_DIR/tap ]]; then delete_tap "$(<"$VM_DIR/tap")" || true; fi
	rm -f -- "$VM_DIR/tap" "$VM_DIR/qemu.pid"
	exit 1
}

cmd_start() {
	parse_start "$@"
	need_root
	local ip=${VM_ADDR%/*} prefix=${VM_ADDR#*/}
	if [[ -n $(qemu_pid "$VM_DIR") && -s $VM_DIR/vm.json ]]; then
		log "$VM_NAME already runs (pid $(qemu_pid "$VM_DIR"))"
		cat "$VM_DIR/vm.json"
		return
	fi
	[[ -d /sys/class/net/$VM_BRIDGE/bridge ]] || die "no bridge $VM_BRIDGE"
	[[ $(ip -4 -o route get "$ip" 2>/dev/null) == *" dev $VM_BRIDGE "* ]] ||
		die "$ip is not routed via $VM_BRIDGE: refusing to put a VM where its traffic would leave"
	[[ -n $VM_IMAGE ]] || VM_IMAGE=$("$DISK_DIR/build-disk-image.sh" | tail -1)
	[[ -s $VM_IMAGE/disk.raw ]] || die "no disk image in $VM_IMAGE"
	ensure_tools qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils ssh-keyscan:openssh-client jq:jq tar:tar
	if [[ -e $VM_DIR ]]; then
		[[ -e $VM_DIR/disk.qcow2 || -z $(ls -A "$VM_DIR") ]] || die "$VM_DIR exists and is no VM state dir"
		if [[ -s $VM_DIR/tap ]]; then delete_tap "$(<"$VM_DIR/tap")"; fi
		rm -rf -- "$VM_DIR"
	fi
	mkdir -p -- "$(dirname -- "$VM_DIR")"
	mkdir -m 0700 -- "$VM_DIR"
	qemu-img create -q -f qcow2 -b "$VM_IMAGE/disk.raw" -F raw "$VM_DIR/disk.qcow2"
	write_seed
	make_tap
	log "starting $VM_NAME ($VM_ADDR, ${VM_MEMORY} MiB, tap $VM_TAP on $VM_BRIDGE)"
	local start=$SECONDS t0
	t0=$(date +%s.%N)
	run_qemu || fail_start
	wait_ssh "$ip" $((start + VM_TIMEOUT)) || fail_start
	local boot pid hostkey json
	boot=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	pid=$(qemu_pid "$VM_DIR")
	hostkey=$(<"$VM_DIR/host-key.pub")
	printf '%s %s\n' "$ip" "$hostkey" >"$VM_DIR/known_hosts"
	json=$(jq -cn --arg name "$VM_NAME" --argjson pid "$pid" --arg address "$ip" --argjson prefix "$prefix" \
		--arg mac "$VM_MAC" --arg tap "$VM_TAP" --arg bridge "$VM_BRIDGE" --arg dir "$VM_DIR" \
		--arg hostKey "$hostkey" --argjson boot "$boot" --arg image "$VM_IMAGE" \
		--arg kr "$(cat "$VM_IMAGE/kernel-release")" \
		'{name: $name, pid: $pid, address: $address, prefixLength: $prefix, mac: $mac, tap: $tap,
		  bridge: $bridge, stateDir: $dir, console: ($dir + "/console.log"),
		  knownHosts: ($dir + "/known_hosts"), hostKey: $hostKey, bootSeconds: $boot,
		  image: $image, kernelRelease: $kr}')
	printf '%s\n' "$json" >"$VM_DIR/vm.json"
	log "$VM_NAME answers on $ip after ${boot} s"
	printf '%s\n' "$json"
}

parse_dir() { # sets VM_DIR
	VM_DIR=''
	while (($#)); do
		case $1 in
		--state-dir)
			(($# >= 2)) || usage_die "--state-dir needs a value"
			VM_DIR=$(readlink -m -- "$2")
			shift 2
			;;
		*) usage_die "unknown argument: $1" ;;
		esac
	done
	[[ -n $VM_DIR ]] || usage_die "--state-dir is required"
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

(($#)) || {
	usage >&2
	exit 2
}
sub=$1
shift
case $sub in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
-h | --help | help) usage ;;
*) usage_die "unknown command: $sub" ;;
esac
