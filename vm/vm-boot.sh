# vm-boot.sh — how `vm.sh start` boots a VM once its arguments, state dir and image are
# settled (vm-start.sh): the per-VM initrd, the persistent disk, the tap, the qemu command line,
# the wait for SSH and the JSON report. Sourced by vm.sh.
# shellcheck shell=bash
# The functions read and set cmd_start's locals (name, state, tap, pid, …) through bash's
# dynamic scope.
# shellcheck disable=SC2154

PERSIST_SERIAL=fou-persist # the disk's virtio serial, which the initramfs (fou-vm-initrd, or fou-vm-init of a cpio image) looks for
PERSIST_MIB=256
# What the kernel skips to boot faster in a test VM under TCG (~0.4 s): crypto self-tests, TSC
# checks, speculation mitigations, audit, the i8042 probe.
TCG_KERNEL_ARGS="cryptomgr.notests tsc=reliable no_timer_check mitigations=off audit=0 i8042.nokbd i8042.noaux 8250.nr_uarts=1"

# Boots the VM and waits for its sshd; sets started_pid and created_tap for start_on_fail.
boot_vm() {
	write_vm_initrd
	local -a disk_args
	mapfile -t disk_args < <(root_disk_qemu_args "$image" "$kind")
	if ((persist)); then
		make_persist_disk
		disk_args+=(-drive "file=$state/persist.img,if=none,id=persist,format=raw,discard=unmap"
			-device "virtio-blk-pci,drive=persist,serial=$PERSIST_SERIAL")
	fi

	# tap on the bridge
	ip tuntap add dev "$tap" mode tap || die "cannot create tap $tap"
	# shellcheck disable=SC2034 # read by start_on_fail
	created_tap=$tap
	printf '%s\n' "$tap" >"$state/tap"
	ip link set dev "$tap" master "$bridge" || die "cannot attach $tap to $bridge"
	ip link set dev "$tap" up || die "cannot set $tap up"

	run_qemu "${disk_args[@]}"
	pid=$(qemu_pid "$state") || die "qemu started but its pidfile/process is missing"
	# shellcheck disable=SC2034 # read by start_on_fail
	started_pid=$pid
	# qemu has loaded kernel and initrd into its memory: the copy (with the host key) can go
	rm -f -- "$state/initrd"

	await_ssh "$name" "$ip" "$pid" "$state" "$timeout"
}

# The per-VM files (hostname, hosts, machine-id, host key, authorized key; with --no-fou empty
# fou modules and a modprobe rule; the cloud-init seed), appended to the image's initramfs as
# STATE/initrd. That file holds the host's private key until qemu has read it.
write_vm_initrd() {
	local ov=$state/overlay
	(
		umask 022
		mkdir -p -- "$ov/etc/ssh" "$ov/etc/modprobe.d"
		printf '%s\n' "$name" >"$ov/etc/hostname"
		printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$name" >"$ov/etc/hosts"
		tr -d '-' </proc/sys/kernel/random/uuid >"$ov/etc/machine-id"
		if [[ -n $hostkey_text ]]; then
			(umask 077 && printf '%s\n' "$hostkey_text" >"$ov/etc/ssh/ssh_host_ed25519_key")
			printf '%s root@%s\n' "$hostkey_pub" "$name" >"$ov/etc/ssh/ssh_host_ed25519_key.pub"
		else
			ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$ov/etc/ssh/ssh_host_ed25519_key" >/dev/null
		fi
		chmod 600 "$ov/etc/ssh/ssh_host_ed25519_key"
		install -d -m 0700 "$ov/root" "$ov/root/.ssh"
		printf '%s\n' "$key" >"$ov/root/.ssh/authorized_keys"
		chmod 600 "$ov/root/.ssh/authorized_keys"
		if [[ -n $seed ]]; then # the image has the directory (files only in this cpio)
			install -d -m 0755 "$ov/var/lib/cloud/seed/nocloud"
			install -m 0600 -- "$seed/user-data" "$seed/meta-data" "$ov/var/lib/cloud/seed/nocloud/"
		fi
		if ((nofou)); then
			local m
			while read -r m; do
				[[ -n $m ]] || continue
				mkdir -p -- "$ov/$(dirname -- "$m")"
				: >"$ov/$m"
			done <"$image/fou-modules"
			printf '# fou-tunnel --no-fou: simulate a kernel without fou\ninstall fou /bin/false\ninstall fou6 /bin/false\n' \
				>"$ov/etc/modprobe.d/fou-tunnel-no-fou.conf"
		fi
	)
	cp -- "$ov/etc/ssh/ssh_host_ed25519_key.pub" "$state/ssh_host_ed25519_key.pub"
	make_vm_initrd "$image" "$kind" "$ov" "$state/initrd" || die "cannot write $state/initrd"
	rm -rf --one-file-system -- "$ov"
}

# The persistent disk: sparse, formatted here (the guest needs no mkfs). A new VM gets an
# empty one; it lives as long as the state dir, across reboots of the guest.
make_persist_disk() {
	truncate -s "${PERSIST_MIB}M" -- "$state/persist.img" || die "cannot create $state/persist.img"
	mkfs.ext4 -q -F -L "$PERSIST_SERIAL" -m 0 -E lazy_itable_init=0,lazy_journal_init=1 \
		"$state/persist.img" >"$state/mkfs.log" 2>&1 || {
		cat -- "$state/mkfs.log" >&2
		die "mkfs.ext4 $state/persist.img failed"
	}
	rm -f -- "$state/mkfs.log"
}

# Starts qemu -daemonize with the VM's kernel, initrd, NIC and the given disk arguments, after
# recording the settings and the start time in the state dir.
run_qemu() { # DISK_ARGS...
	local mask
	mask=$(prefix_to_mask "$prefix")
	# panic=0: a panic before the initramfs loaded pvpanic_pci hangs the VM (the wait for SSH
	# sees it on the console); after that, pvpanic makes qemu exit (-action panic=exit-failure).
	local append="console=ttyS0 panic=0 rdinit=$rdinit net.ifnames=0 ip=$ip:::$mask:$name:eth0:off"
	append+="$(root_disk_kernel_args "$kind" "$ip/$prefix")"
	((persist)) && append+=" fou_persist=$PERSIST_SERIAL"
	local -a accel_args
	if [[ $accel == kvm ]]; then
		accel_args=(-accel kvm -cpu host)
	else
		# +rdrand: the kernel trusts it (RANDOM_TRUST_CPU), so its random pool is ready at once;
		# without it sshd waits for the pool (crng init) until ~13 s into the boot
		# shellcheck disable=SC2054 # the commas are qemu's, inside one argument each
		accel_args=(-accel tcg,thread=single,tb-size=128 -cpu qemu64,+rdrand)
		append+=" nohz=off $TCG_KERNEL_ARGS"
	fi
	log "starting $name ($ip/$prefix, $accel, ${memory} MiB, tap $tap on $bridge)"
	printf '%s\n' "$settings" >"$state/settings"
	printf '%s %s %s\n' "$EPOCHREALTIME" "$accel" "$krel" >"$state/started"
	# qemu must inherit no descriptor but 0-2: not our locks (fd 8 would keep the state dir
	# locked for the VM's lifetime), nor a caller's pipe (a Pulumi command would never see EOF).
	# No -no-reboot: a guest reboot resets the machine, which boots the same kernel, initrd
	# (held in qemu's memory, so the same host key) and command line (the same address) again.
	if ! run_closing_fds qemu-system-x86_64 -name "$name" -machine pc "${accel_args[@]}" -smp 1 -m "$memory" \
		-nodefaults -display none -action panic=exit-failure -device pvpanic-pci \
		-kernel "$(boot_kernel "$image")" -initrd "$state/initrd" -append "$append" \
		-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vnet_hdr=off" \
		-device "virtio-net-pci,netdev=n0,mac=$mac,romfile=" \
		"$@" \
		-serial "file:$state/console.log" \
		-daemonize -pidfile "$state/qemu.pid" >"$state/qemu.err" 2>&1; then
		die "qemu failed to start"
	fi
}

prefix_to_mask() {
	local p=$1 m i out=''
	m=$(((0xffffffff << (32 - p)) & 0xffffffff))
	for i in 24 16 8 0; do out+=$(((m >> i) & 255)).; done
	printf '%s\n' "${out%.}"
}

# Waits until the VM's sshd sends its banner; fails (naming the VM, address and port) when
# qemu exits, the guest panics, or TIMEOUT seconds pass.
await_ssh() { # NAME IP PID STATE TIMEOUT
	local name=$1 ip=$2 pid=$3 state=$4 timeout=$5
	local deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		if ! is_our_qemu "$pid" "$state"; then
			console_panicked "$state" && die "$name: the guest kernel panicked during boot (qemu exited)"
			die "$name: qemu exited during boot"
		fi
		console_panicked "$state" && die "$name: the guest kernel panicked during boot"
		# shellcheck disable=SC2016 # $1 expands in the child shell
		if timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/22" && IFS= read -r -t 2 line <&3 && [[ $line == SSH-* ]]' _ "$ip" 2>/dev/null; then
			return 0
		fi
		sleep 0.5
	done
	die "$name: timed out after ${timeout} s waiting for SSH on $ip port 22"
}

# Writes vm.json and prints it: the VM of cmd_start's locals, booted (qemu started at the time
# in STATE/started).
write_report() {
	local t0 accel krel secs hostkey nf=false pj=false line
	read -r t0 accel krel <"$state/started"
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	hostkey=$(cut -d' ' -f1,2 <"$state/ssh_host_ed25519_key.pub")
	((nofou)) && nf=true
	((persist)) && pj=true
	line=$(printf '{"name":%s,"pid":%s,"address":%s,"prefixLength":%s,"tap":%s,"bridge":%s,"mac":%s,"stateDir":%s,"bootSeconds":%s,"accel":%s,"memoryMiB":%s,"kernelRelease":%s,"noFou":%s,"persist":%s,"hostKey":%s}' \
		"$(json_str "$name")" "$pid" "$(json_str "$ip")" "$prefix" "$(json_str "$tap")" "$(json_str "$bridge")" \
		"$(json_str "${mac,,}")" "$(json_str "$state")" "$secs" "$(json_str "$accel")" "$memory" \
		"$(json_str "$krel")" "$nf" "$pj" "$(json_str "$hostkey")")
	printf '%s\n' "$line" >"$state/vm.json"
	log "$name answers SSH on $ip after $secs s (pid $pid)"
	printf '%s\n' "$line"
}
