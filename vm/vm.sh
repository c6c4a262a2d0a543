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

# shellcheck source=vm/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"
# shellcheck source=vm/vm-image.sh
. "$HERE/vm-image.sh"

json_str() { # JSON string literal
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\t'/\\t}
	s=${s//$'\r'/\\r}
	printf '"%s"' "$s"
}

MARKER=.fou-tunnel-vm
PERSIST_SERIAL=fou-persist # the disk's virtio serial, which the initramfs (fou-vm-initrd, or fou-vm-init of a cpio image) looks for
PERSIST_MIB=256
CACHE_ROOT=${FOU_CACHE:-${HOME:-/root}/.cache/fou-tunnel}
TCG_KERNEL_ARGS="cryptomgr.notests tsc=reliable no_timer_check mitigations=off audit=0 i8042.nokbd i8042.noaux 8250.nr_uarts=1"

# ------------------------------------------------------------------ helpers
# The qemu of STATE is running: PID from the pidfile, and its command line has our pidfile.
qemu_pid() { # STATE -> prints PID, returns 1 if not running
	local state=$1 pid
	[[ -s $state/qemu.pid ]] || return 1
	read -r pid <"$state/qemu.pid" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	is_our_qemu "$pid" "$state" || return 1
	printf '%s\n' "$pid"
}
is_our_qemu() { # PID STATE
	local pid=$1 state=$2 args
	[[ -r /proc/$pid/cmdline ]] || return 1
	mapfile -d '' -t args </proc/"$pid"/cmdline 2>/dev/null || return 1
	((${#args[@]} > 0)) || return 1 # zombie / kernel thread
	[[ ${args[0]##*/} == qemu-system-* ]] || return 1
	local i
	for ((i = 1; i < ${#args[@]}; i++)); do
		[[ ${args[i - 1]} == -pidfile && ${args[i]} == "$state/qemu.pid" ]] && return 0
	done
	return 1
}


delete_tap() { # TAP; tolerates absent; returns 1 (with a message) if it is not a tap or in use
	local tap=$1
	link_exists "$tap" || return 0
	if [[ ! -e /sys/class/net/$tap/tun_flags ]]; then
		log "error: $tap exists but is not a tun/tap device; not deleting it"
		return 1
	fi
	if tap_in_use "$tap"; then
		log "error: tap $tap is still open by some process; not deleting it"
		return 1
	fi
	if ! ip link del dev "$tap" 2>/dev/null && link_exists "$tap"; then
		log "error: cannot delete tap $tap"
		return 1
	fi
	return 0
}

proc_starttime() { # PID -> field 22 of /proc/PID/stat (after the "(comm)")
	local stat
	local -a f
	{ stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
	stat=${stat##*) }
	read -r -a f <<<"$stat"
	printf '%s %s\n' "${f[0]}" "${f[19]}" # state, starttime
}

# Wait until PID (started at STARTTIME) has exited: gone, a zombie (its files are closed by
# then), or the PID reused by another process.
wait_exit() { # PID STARTTIME SECONDS
	local pid=$1 start=$2 t=$3 i st
	for ((i = 0; i < t * 10; i++)); do
		st=$(proc_starttime "$pid" 2>/dev/null) || return 0
		[[ ${st#* } == "$start" ]] || return 0
		[[ ${st%% *} == [ZX] ]] && return 0
		sleep 0.1
	done
	return 1
}

kill_qemu() { # PID STATE; returns 1 (with a message) if it cannot be ended
	local pid=$1 state=$2 st start
	is_our_qemu "$pid" "$state" || return 0
	st=$(proc_starttime "$pid") || return 0
	start=${st#* }
	kill -TERM "$pid" 2>/dev/null || true
	wait_exit "$pid" "$start" 15 && return 0
	log "qemu $pid ignored SIGTERM; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	wait_exit "$pid" "$start" 10 && return 0
	log "error: qemu $pid does not exit"
	return 1
}

# Resolve and check a state dir: absolute, and either new, empty, or one of ours.
state_dir_path() {
	local d=$1
	[[ -n $d ]] || usage_die "--state-dir is required"
	d=$(readlink -m -- "$d")
	[[ $d != / ]] || die "refusing / as state dir"
	[[ $d != *$'\n'* ]] || die "state dir path with a newline"
	printf '%s\n' "$d"
}
state_is_ours() { [[ -f $1/$MARKER ]]; }
state_is_empty() { [[ -d $1 && -z $(find "$1" -mindepth 1 -maxdepth 1 -print -quit) ]]; }

# The console shows a kernel panic (the VM hangs with panic=0, or qemu exited via pvpanic).
console_panicked() { # STATE
	grep -qs 'Kernel panic - not syncing' "$1/console.log"
}

print_json_if_running() { # STATE
	local state=$1 pid line
	pid=$(qemu_pid "$state") || return 1
	[[ -s $state/vm.json ]] || return 1
	line=$(<"$state/vm.json")
	# the stored line carries the PID at start time; it is the same process (pidfile checked)
	printf '%s\n' "$line"
}

# TAP exists and is a port of BRIDGE (a bridge deleted and made again has lost its ports).
tap_on_bridge() { # TAP BRIDGE
	[[ -e /sys/class/net/$1/tun_flags && $(readlink -- "/sys/class/net/$1/master" 2>/dev/null) == */"$2" ]]
}

json_field() { # FILE FIELD -> the string or number value (flat JSON from this script only)
	local v
	v=$(grep -o "\"$2\":\(\"[^\"]*\"\|[0-9.]*\|true\|false\)" "$1" | head -n1) || return 1
	v=${v#*:}
	v=${v#\"}
	printf '%s\n' "${v%\"}"
}

# ------------------------------------------------------------------ accelerator
# KVM is usable only if a kernel really boots under it (some hosts expose a /dev/kvm that cannot
# run an ordinary guest kernel, e.g. PVM): boot the image's kernel without a root file system and
# expect its "Kernel panic" (no root) within a few seconds. Cached per host boot and kernel.
choose_accel() { # VMLINUZ KERNEL_RELEASE
	local vmlinuz=$1 krel=$2 forced=${FOU_ACCEL:-}
	case $forced in
	kvm | tcg)
		printf '%s\n' "$forced"
		return 0
		;;
	'') ;;
	*) die "FOU_ACCEL must be kvm or tcg, not '$forced'" ;;
	esac
	if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
		printf 'tcg\n'
		return 0
	fi
	local boot_id cache result
	boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
	mkdir -p -- "$CACHE_ROOT"
	cache=$CACHE_ROOT/accel-probe
	exec 7>>"$cache.lock"
	flock 7
	if [[ -s $cache ]] && read -r b k result <"$cache" && [[ $b == "$boot_id" && $k == "$krel" ]] &&
		[[ $result == kvm || $result == tcg ]]; then
		exec 7>&-
		printf '%s\n' "$result"
		return 0
	fi
	log "probing whether KVM can boot $krel (once per host boot)"
	local tmp
	tmp=$(mktemp -d)
	result=tcg
	timeout 15 qemu-system-x86_64 -machine pc -accel kvm -cpu host -m 256 -smp 1 -nodefaults \
		-display none -no-reboot -serial "file:$tmp/console" -kernel "$vmlinuz" \
		-append "console=ttyS0 panic=-1" >"$tmp/err" 2>&1 || true
	if grep -q 'Kernel panic' "$tmp/console" 2>/dev/null; then
		result=kvm
	else
		log "KVM cannot boot this kernel here ($(tail -n1 "$tmp/err" 2>/dev/null || true)); using TCG"
	fi
	rm -rf -- "$tmp"
	printf '%s %s %s\n' "$boot_id" "$krel" "$result" >"$cache.new"
	mv -f -- "$cache.new" "$cache"
	exec 7>&-
	printf '%s\n' "$result"
}

# ------------------------------------------------------------------ start
cmd_start() {
	local name='' address='' bridge='' tap='' mac='' state='' key='' memory=384 nofou=0 persist=1 image=''
	local hostkey_file='' hostkey_text='' seed=''
	local timeout=${FOU_BOOT_TIMEOUT:-120}
	while (($#)); do
		case $1 in
		--name | --address | --bridge | --tap | --mac | --state-dir | --authorized-key | --host-key | --memory | --image | --timeout | --cloud-seed)
			(($# >= 2)) || usage_die "$1 needs a value"
			case $1 in
			--name) name=$2 ;;
			--address) address=$2 ;;
			--bridge) bridge=$2 ;;
			--tap) tap=$2 ;;
			--mac) mac=$2 ;;
			--state-dir) state=$2 ;;
			--authorized-key) key=$2 ;;
			--host-key) hostkey_file=$2 ;;
			--memory) memory=$2 ;;
			--image) image=$2 ;;
			--timeout) timeout=$2 ;;
			--cloud-seed) seed=$2 ;;
			esac
			shift 2
			;;
		--no-fou)
			nofou=1
			shift
			;;
		--no-persist)
			persist=0
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) usage_die "unknown argument to start: $1" ;;
		esac
	done

	# validate everything before touching anything
	[[ $name =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || usage_die "--name must be a hostname label (a-z, 0-9, -), got '$name'"
	[[ $address =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] ||
		usage_die "--address must be IPv4/PREFIX, got '$address'"
	local o prefix=${BASH_REMATCH[5]} ip=${address%/*}
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
	local hostkey_pub=''
	if [[ -n $hostkey_file ]]; then
		if [[ $hostkey_file == - ]]; then
			hostkey_text=$(cat) || die "cannot read the host key from stdin"
		else
			hostkey_text=$(<"$hostkey_file") || die "cannot read the host key from $hostkey_file"
		fi
		hostkey_pub=$(host_key_public "$hostkey_text") ||
			usage_die "--host-key must be an unencrypted OpenSSH ed25519 private key"
	fi
	local seed_hash=none
	if [[ -n $seed ]]; then
		[[ -f $seed/user-data && -f $seed/meta-data ]] || usage_die "--cloud-seed $seed must hold user-data and meta-data"
		seed_hash=$(cat -- "$seed/user-data" "$seed/meta-data" | sha256sum | cut -c1-16)
	fi
	if ((persist)) && ! command -v mkfs.ext4 >/dev/null 2>&1; then
		die "mkfs.ext4 is missing (apt-get install e2fsprogs; build-image.sh installs it)"
	fi

	[[ -d /sys/class/net/$bridge/bridge ]] || die "bridge $bridge does not exist (run net.sh up first)"
	# Never send anything outside the bridge: the VM address must be routed via the bridge.
	local via
	via=$(ip -o route get "$ip" 2>/dev/null) || die "no route to $ip"
	[[ $via != local\ * ]] || die "$ip is a local address of this host"
	[[ $via =~ \ dev\ $bridge(\ |$) && ! $via =~ \ via\  ]] ||
		die "$ip is not on bridge $bridge's subnet (route: $via)"

	# the state dir: new, empty or ours; locked for the whole start
	if [[ -e $state ]]; then
		[[ -d $state ]] || die "$state exists and is not a directory"
		state_is_ours "$state" || state_is_empty "$state" || die "$state is not empty and not a VM state dir of $PROG"
	fi
	mkdir -p -- "$state"
	chmod 700 -- "$state" # the host's private key passes through it
	exec 8<"$state"
	flock -w 600 8 || die "cannot lock $state"
	printf 'fou-tunnel vm state dir; remove with: vm.sh stop --state-dir %s\n' "$state" >"$state/$MARKER"

	# What makes this VM: written before qemu starts, so a start that was interrupted at any
	# point leaves a VM the next start can recognise. (Without --host-key the key is made per
	# start, and a running VM keeps its own.)
	local settings
	settings=$(printf 'name=%s address=%s/%s bridge=%s tap=%s mac=%s memory=%s nofou=%s persist=%s key=%s hostkey=%s' \
		"$name" "$ip" "$prefix" "$bridge" "$tap" "${mac,,}" "$memory" "$nofou" "$persist" "$key" "${hostkey_pub:-generated}")
	[[ $seed_hash == none ]] || settings+=" cloud-seed=$seed_hash"

	# already running?
	local pid
	if pid=$(qemu_pid "$state"); then
		local why=''
		if [[ ! -s $state/settings || $(<"$state/settings") != "$settings" ]]; then
			why="it was started with other settings"
		elif ! tap_on_bridge "$tap" "$bridge"; then
			why="its tap $tap is not on bridge $bridge"
		fi
		if [[ -z $why ]]; then
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
			return 0
		fi
		log "replacing the VM running from $state (pid $pid): $why"
		kill_qemu "$pid" "$state" || exit 1
	fi

	# leftovers of a crashed start/stop: a tap we created, files
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

	# the image
	if [[ -z $image ]]; then
		image=$("$HERE/build-image.sh" | tail -n1) || die "build-image.sh failed"
	fi
	image=$(readlink -f -- "$image")
	local kind
	kind=$(image_kind "$image") && [[ -s $image/vmlinuz && -s $image/kernel-release ]] ||
		die "$image is not an image directory (vmlinuz, kernel-release, root.img + initrd.cpio or base.cpio)"
	((memory >= $(image_min_memory "$kind"))) ||
		die "--memory $memory is too small for $image (its root is a cpio in RAM): at least $(image_min_memory "$kind") MiB"
	local krel rdinit=''
	krel=$(<"$image/kernel-release")
	[[ -s $image/rdinit ]] && rdinit=$(<"$image/rdinit")
	[[ $rdinit =~ ^/[A-Za-z0-9/_.-]+$ ]] ||
		die "$image has no rdinit file: it predates fou-vm-init; run build-image.sh for a new image"

	local accel
	accel=$(choose_accel "$image/vmlinuz" "$krel")

	# From here on, undo on failure what we create.
	local started_pid='' created_tap=''
	# shellcheck disable=SC2317 # called from the trap
	on_fail() {
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
	trap on_fail EXIT
	# a signal must clean up too (in the EXIT trap, $? would otherwise be that of the last command)
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM

	# per-VM cpio: hostname, machine-id, host key, authorized key, (no-fou)
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
	# the image's initramfs + these files (the host's private key among them: gone once qemu has it)
	make_vm_initrd "$image" "$kind" "$ov" "$state/initrd" || die "cannot write $state/initrd"
	rm -rf --one-file-system -- "$ov"

	# The persistent disk: sparse, formatted here (the guest needs no mkfs). A new VM gets an
	# empty one; it lives as long as the state dir, across reboots of the guest.
	local -a disk_args
	mapfile -t disk_args < <(root_disk_qemu_args "$image" "$kind")
	if ((persist)); then
		truncate -s "${PERSIST_MIB}M" -- "$state/persist.img" || die "cannot create $state/persist.img"
		mkfs.ext4 -q -F -L "$PERSIST_SERIAL" -m 0 -E lazy_itable_init=0,lazy_journal_init=1 \
			"$state/persist.img" >"$state/mkfs.log" 2>&1 || {
			cat -- "$state/mkfs.log" >&2
			die "mkfs.ext4 $state/persist.img failed"
		}
		rm -f -- "$state/mkfs.log"
		disk_args+=(-drive "file=$state/persist.img,if=none,id=persist,format=raw,discard=unmap"
			-device "virtio-blk-pci,drive=persist,serial=$PERSIST_SERIAL")
	fi

	# tap on the bridge
	ip tuntap add dev "$tap" mode tap || die "cannot create tap $tap"
	created_tap=$tap
	printf '%s\n' "$tap" >"$state/tap"
	ip link set dev "$tap" master "$bridge" || die "cannot attach $tap to $bridge"
	ip link set dev "$tap" up || die "cannot set $tap up"

	# qemu
	local mask
	mask=$(prefix_to_mask "$prefix")
	# panic=0: a panic before the initramfs loaded pvpanic_pci hangs the VM (the wait below sees
	# it on the console); after that, pvpanic makes qemu exit (-action panic=exit-failure).
	local append="console=ttyS0 panic=0 rdinit=$rdinit net.ifnames=0 ip=$ip:::$mask:$name:eth0:off"
	append+="$(root_disk_kernel_args "$kind" "$ip/$prefix")"
	((persist)) && append+=" fou_persist=$PERSIST_SERIAL"
	local -a accel_args
	if [[ $accel == kvm ]]; then
		accel_args=(-accel kvm -cpu host)
	else
		# +rdrand: the kernel trusts it (RANDOM_TRUST_CPU), so its random pool is ready at once;
		# without it sshd waited for the pool (crng init) until ~13 s into the boot
		accel_args=(-accel "tcg,thread=single,tb-size=128" -cpu qemu64,+rdrand)
		# and what the kernel skips to boot faster in a test VM under TCG (measured: ~0.4 s):
		# crypto self-tests, TSC checks, speculation mitigations, audit, the i8042 probe
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
		"${disk_args[@]}" \
		-serial "file:$state/console.log" \
		-daemonize -pidfile "$state/qemu.pid" >"$state/qemu.err" 2>&1; then
		die "qemu failed to start"
	fi
	pid=$(qemu_pid "$state") || die "qemu started but its pidfile/process is missing"
	started_pid=$pid
	# qemu has loaded kernel and initrd into its memory: the copy (with the host key) can go
	rm -f -- "$state/initrd"

	await_ssh "$name" "$ip" "$pid" "$state" "$timeout"
	trap - EXIT HUP INT TERM
	write_report
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

# Writes vm.json and prints it: the VM of cmd_start's variables, booted (qemu started at the
# time in DIR/started).
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

run_closing_fds() { # CMD ARGS... with every descriptor above 2 closed
	(
		local fd
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			[[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)) && exec {fd}>&-
		done
		exec "$@"
	)
}

prefix_to_mask() {
	local p=$1 m i out=''
	m=$(((0xffffffff << (32 - p)) & 0xffffffff))
	for i in 24 16 8 0; do out+=$(((m >> i) & 255)).; done
	printf '%s\n' "${out%.}"
}

# ------------------------------------------------------------------ stop
cmd_stop() {
	local state='' tap=''
	while (($#)); do
		case $1 in
		--state-dir | --tap)
			(($# >= 2)) || usage_die "$1 needs a value"
			if [[ $1 == --state-dir ]]; then state=$2; else tap=$2; fi
			shift 2
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) usage_die "unknown argument to stop: $1" ;;
		esac
	done
	[[ -z $tap || $tap =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage_die "--tap must be an interface name"
	state=$(state_dir_path "$state")
	[[ $(id -u) -eq 0 ]] || die "must run as root"

	if [[ ! -e $state ]]; then
		if [[ -n $tap ]]; then delete_tap "$tap" || exit 1; fi
		log "$state: already gone"
		return 0
	fi
	[[ -d $state ]] || die "$state is not a directory"
	if ! state_is_ours "$state"; then
		if state_is_empty "$state"; then
			rmdir -- "$state"
			if [[ -n $tap ]]; then delete_tap "$tap" || exit 1; fi
			return 0
		fi
		die "$state is not a VM state dir of $PROG (no $MARKER); not touching it"
	fi
	exec 8<"$state"
	flock -w 600 8 || die "cannot lock $state"

	local pid
	if pid=$(qemu_pid "$state"); then
		log "stopping qemu $pid"
		kill_qemu "$pid" "$state" || exit 1
	fi
	local t
	if [[ -s $state/tap ]]; then
		t=$(<"$state/tap")
		if [[ -n $t ]]; then delete_tap "$t" || exit 1; fi
	fi
	if [[ -n $tap ]]; then delete_tap "$tap" || exit 1; fi
	rm -rf --one-file-system -- "$state"
	[[ ! -e $state ]] || die "cannot remove $state"
	log "stopped; removed $state"
}

# ------------------------------------------------------------------ status
cmd_status() {
	local state=''
	while (($#)); do
		case $1 in
		--state-dir)
			(($# >= 2)) || usage_die "$1 needs a value"
			state=$2
			shift 2
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) usage_die "unknown argument to status: $1" ;;
		esac
	done
	state=$(state_dir_path "$state")
	local line tap bridge
	if line=$(print_json_if_running "$state"); then
		tap=$(json_field "$state/vm.json" tap) && bridge=$(json_field "$state/vm.json" bridge) ||
			die "$state/vm.json names no tap or bridge"
		if ! tap_on_bridge "$tap" "$bridge"; then
			log "not usable: $state runs (pid $(json_field "$state/vm.json" pid)) but its tap $tap is not on bridge $bridge"
			return 1
		fi
		printf '%s\n' "$line"
		return 0
	fi
	if [[ -f $state/$MARKER ]] && console_panicked "$state"; then
		log "not running: $state (its console shows a kernel panic: $state/console.log)"
		return 1
	fi
	if qemu_pid "$state" >/dev/null; then
		log "not ready: $state has a qemu that has not answered SSH yet (an interrupted start?)"
		return 1
	fi
	log "not running: $state"
	return 1
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
