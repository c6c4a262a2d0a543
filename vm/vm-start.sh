# vm-start.sh — `vm.sh start`: the arguments, the state dir, a VM already running from it,
# the image, and the cleanup when the start fails. The boot itself (per-VM files, disk, tap,
# qemu, the wait for SSH, the report) is in vm-boot.sh. Sourced by vm.sh.
# shellcheck shell=bash
# The functions here and in vm-boot.sh share cmd_start's locals (name, state, tap, …) through
# bash's dynamic scope.
# shellcheck disable=SC2154

cmd_start() {
	local name='' address='' bridge='' tap='' mac='' state='' key='' memory=384 nofou=0 persist=1 image=''
	local hostkey_file='' hostkey_text='' hostkey_pub='' seed='' seed_hash=none
	local timeout=${FOU_BOOT_TIMEOUT:-120}
	local ip prefix settings pid='' kind krel rdinit='' accel adopted=0
	parse_options --name=name --address=address --bridge=bridge --tap=tap --mac=mac --state-dir=state \
		--authorized-key=key --host-key=hostkey_file --memory=memory --image=image --timeout=timeout \
		--cloud-seed=seed --no-fou:nofou=1 --no-persist:persist=0 -h @start -- "$@"
	start_check_args
	start_read_inputs
	start_check_network
	start_lock_state
	start_running_vm
	if ((adopted)); then return 0; fi
	start_clean_leftovers
	start_image

	# From here on, undo on failure what we create.
	local started_pid='' created_tap=''
	trap start_on_fail EXIT
	# a signal must clean up too (in the EXIT trap, $? would otherwise be that of the last command)
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	boot_vm
	trap - EXIT HUP INT TERM
	write_report
}

# Checks the arguments, before anything is touched; sets ip, prefix and the absolute state.
start_check_args() {
	[[ $name =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || usage_die "--name must be a hostname label (a-z, 0-9, -), got '$name'"
	[[ $address =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] ||
		usage_die "--address must be IPv4/PREFIX, got '$address'"
	local o
	prefix=${BASH_REMATCH[5]} ip=${address%/*}
	for o in 1 2 3 4; do ((BASH_REMATCH[o] <= 255)) || usage_die "bad address $address"; done
	((prefix >= 8 && prefix <= 30)) || usage_die "prefix length must be 8..30, got $prefix"
	[[ $bridge =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage_die "--bridge must be an interface name (max 15 chars), got '$bridge'"
	[[ $tap =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage_die "--tap must be an interface name (max 15 chars), got '$tap'"
	[[ $mac =~ ^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$ ]] || usage_die "--mac must be xx:xx:xx:xx:xx:xx, got '$mac'"
	(((16#${mac:0:2} & 1) == 0)) || usage_die "--mac must be a unicast address, got '$mac'"
	[[ $key =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com)\ [A-Za-z0-9+/=]+(\ [^[:cntrl:]]*)?$ ]] ||
		usage_die "--authorized-key must be one OpenSSH public key line"
	if ! [[ $memory =~ ^[0-9]+$ ]] || ((10#$memory < 256)); then
		usage_die "--memory must be >= 256 (MiB), got '$memory'"
	fi
	if ! [[ $timeout =~ ^[0-9]+$ ]] || ((10#$timeout == 0)); then
		usage_die "--timeout / FOU_BOOT_TIMEOUT must be a positive integer"
	fi
	memory=$((10#$memory))
	timeout=$((10#$timeout))
	state=$(state_dir_path "$state")
	[[ $(id -u) -eq 0 ]] || die "must run as root (tap devices)"
}

# Reads the host key (a file or stdin) and the cloud-init seed; checks mkfs.ext4 is there.
start_read_inputs() {
	if [[ -n $hostkey_file ]]; then
		if [[ $hostkey_file == - ]]; then
			hostkey_text=$(cat) || die "cannot read the host key from stdin"
		else
			hostkey_text=$(<"$hostkey_file") || die "cannot read the host key from $hostkey_file"
		fi
		hostkey_pub=$(host_key_public "$hostkey_text") ||
			usage_die "--host-key must be an unencrypted OpenSSH ed25519 private key"
	fi
	if [[ -n $seed ]]; then
		[[ -f $seed/user-data && -f $seed/meta-data ]] || usage_die "--cloud-seed $seed must hold user-data and meta-data"
		seed_hash=$(cat -- "$seed/user-data" "$seed/meta-data" | sha256sum | cut -c1-16)
	fi
	if ((persist)) && ! command -v mkfs.ext4 >/dev/null 2>&1; then
		die "mkfs.ext4 is missing (apt-get install e2fsprogs; build-image.sh installs it)"
	fi
}

# The public key line (type and base64) of an ed25519 private key given as text.
host_key_public() { # TEXT
	local tmp pub
	tmp=$(umask 077 && mktemp) || return 1
	printf '%s\n' "$1" >"$tmp"
	pub=$(ssh-keygen -y -f "$tmp" 2>/dev/null) || pub=''
	rm -f -- "$tmp"
	[[ $pub =~ ^ssh-ed25519\ [A-Za-z0-9+/=]+ ]] || return 1
	printf '%s\n' "${BASH_REMATCH[0]}"
}

# Nothing is ever sent outside the bridge: the VM address must be routed via the bridge.
start_check_network() {
	[[ -d /sys/class/net/$bridge/bridge ]] || die "bridge $bridge does not exist (run net.sh up first)"
	local via
	via=$(ip -o route get "$ip" 2>/dev/null) || die "no route to $ip"
	[[ $via != local\ * ]] || die "$ip is a local address of this host"
	[[ $via =~ \ dev\ $bridge(\ |$) && ! $via =~ \ via\  ]] ||
		die "$ip is not on bridge $bridge's subnet (route: $via)"
}

# The state dir: new, empty or ours; locked (fd 8) for the whole start. Sets settings: what
# makes this VM, written before qemu starts, so a start interrupted at any point leaves a VM the
# next start can recognise. (Without --host-key the key is made per start, and a running VM
# keeps its own.)
start_lock_state() {
	if [[ -e $state ]]; then
		[[ -d $state ]] || die "$state exists and is not a directory"
		state_is_ours "$state" || state_is_empty "$state" || die "$state is not empty and not a VM state dir of $PROG"
	fi
	mkdir -p -- "$state"
	chmod 700 -- "$state" # the host's private key passes through it
	exec 8<"$state"
	flock -w 600 8 || die "cannot lock $state"
	printf 'fou-tunnel vm state dir; remove with: vm.sh stop --state-dir %s\n' "$state" >"$state/$MARKER"
	settings=$(printf 'name=%s address=%s/%s bridge=%s tap=%s mac=%s memory=%s nofou=%s persist=%s key=%s hostkey=%s' \
		"$name" "$ip" "$prefix" "$bridge" "$tap" "${mac,,}" "$memory" "$nofou" "$persist" "$key" "${hostkey_pub:-generated}")
	[[ $seed_hash == none ]] || settings+=" cloud-seed=$seed_hash"
}

# A VM already running from the state dir: adopted (adopted=1, its report printed) if it has
# these settings and its tap is on the bridge, else stopped.
start_running_vm() {
	pid=$(qemu_pid "$state") || {
		pid=''
		return 0
	}
	local why=''
	if [[ ! -s $state/settings || $(<"$state/settings") != "$settings" ]]; then
		why="it was started with other settings"
	elif ! tap_on_bridge "$tap" "$bridge"; then
		why="its tap $tap is not on bridge $bridge"
	fi
	if [[ -n $why ]]; then
		log "replacing the VM running from $state (pid $pid): $why"
		kill_qemu "$pid" "$state" || exit 1
		return 0
	fi
	adopted=1
	if print_json_if_running "$state"; then
		log "already running (pid $pid)"
		return 0
	fi
	# an interrupted start: qemu runs, the report was never written
	log "adopting the VM that an interrupted start left (pid $pid)"
	if ! (await_ssh "$name" "$ip" "$pid" "$state" "$timeout"); then
		kill_qemu "$pid" "$state" || true
		delete_tap "$tap" || true
		exit 1
	fi
	write_report
}

# Leftovers of a crashed start or stop: a tap we created, the state dir's files.
start_clean_leftovers() {
	if [[ -s $state/tap ]]; then
		local oldtap
		oldtap=$(<"$state/tap")
		if [[ -n $oldtap ]] && link_exists "$oldtap"; then
			log "removing leftover tap $oldtap"
			delete_tap "$oldtap" || exit 1
		fi
	fi
	rm -f -- "$state"/{qemu.pid,vm.json,settings,started,initrd,vm.cpio,console.log,qemu.err,tap,ssh_host_ed25519_key.pub,persist.img,mkfs.log}
	rm -rf --one-file-system -- "$state/overlay" "$state/overlay.d"

	if link_exists "$tap"; then
		[[ -e /sys/class/net/$tap/tun_flags ]] || die "$tap exists and is not a tap device"
		tap_in_use "$tap" && die "tap $tap exists and is in use by another process"
		log "reusing leftover tap $tap (not in use): recreating it"
		delete_tap "$tap" || exit 1
	fi
}

# The image (built if --image is not given) and what boots it: kind, krel, rdinit, accel.
start_image() {
	if [[ -z $image ]]; then
		image=$("$HERE/build-image.sh" | tail -n1) || die "build-image.sh failed"
	fi
	image=$(readlink -f -- "$image")
	if ! kind=$(image_kind "$image") || [[ ! -s $image/vmlinuz || ! -s $image/kernel-release ]]; then
		die "$image is not an image directory (vmlinuz, kernel-release, root.img + initrd.cpio or base.cpio)"
	fi
	((memory >= $(image_min_memory "$kind"))) ||
		die "--memory $memory is too small for $image (its root is a cpio in RAM): at least $(image_min_memory "$kind") MiB"
	krel=$(<"$image/kernel-release")
	[[ -s $image/rdinit ]] && rdinit=$(<"$image/rdinit")
	[[ $rdinit =~ ^/[A-Za-z0-9/_.-]+$ ]] ||
		die "$image has no rdinit file: it predates fou-vm-init; run build-image.sh for a new image"
	# shellcheck disable=SC2034 # read by run_qemu (vm-boot.sh)
	accel=$(choose_accel "$image/vmlinuz" "$krel")
}

# The EXIT trap while the VM boots: on failure, kill the qemu and delete the tap this start
# made, remove the per-start files, print the console's and qemu's last lines.
# shellcheck disable=SC2317 # called from the trap
start_on_fail() {
	local rc=$?
	trap - EXIT
	if ((rc != 0)); then
		# (a signal may arrive while qemu is starting, before started_pid is set)
		[[ -n $started_pid ]] || started_pid=$(qemu_pid "$state" 2>/dev/null) || true
		if [[ -n $started_pid ]]; then kill_qemu "$started_pid" "$state" || true; fi
		if [[ -n $created_tap ]]; then delete_tap "$created_tap" || true; fi
		rm -f -- "$state/initrd" "$state/qemu.pid" "$state/tap" "$state/persist.img"
		rm -rf --one-file-system -- "$state/overlay" "$state/overlay.d"
		if [[ -s $state/console.log ]]; then
			printf '%s: last lines of %s:\n' "$PROG" "$state/console.log" >&2
			tail -n 25 "$state/console.log" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/\r//g' >&2
		fi
		if [[ -s $state/qemu.err ]]; then
			printf '%s: qemu stderr:\n' "$PROG" >&2
			tail -n 10 "$state/qemu.err" >&2
		fi
	fi
	exit "$rc"
}
