# disk-vm-start.sh — `disk-vm.sh start`: the arguments, the state dir with the qcow2 overlay
# and the seed disk, the tap, qemu, the wait for SSH with the seed's host key, the JSON report.
# Sourced by disk-vm.sh.
# shellcheck shell=bash

parse_start() { # sets the VM_* variables
	VM_NAME='' VM_ADDR='' VM_BRIDGE='' VM_TAP='' VM_MAC='' VM_DIR='' VM_KEY='' VM_HOSTKEY=''
	VM_IMAGE='' VM_MEMORY=1024 VM_TIMEOUT=300
	parse_options --name=VM_NAME --address=VM_ADDR --bridge=VM_BRIDGE --tap=VM_TAP --mac=VM_MAC \
		--state-dir=VM_DIR --authorized-key=VM_KEY --host-key=VM_HOSTKEY --image=VM_IMAGE \
		--memory=VM_MEMORY --timeout=VM_TIMEOUT -- "$@"
	VM_MAC=${VM_MAC,,}
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
