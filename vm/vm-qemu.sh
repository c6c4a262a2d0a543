# vm-qemu.sh — a VM's qemu process and its tap: find the qemu of a state dir (its pidfile and
# command line), end it, delete the tap, start a process with no inherited descriptors.
# Sourced by vm.sh (after vm/lib.sh).
# shellcheck shell=bash

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

# TAP exists and is a port of BRIDGE (a bridge deleted and made again has lost its ports).
tap_on_bridge() { # TAP BRIDGE
	[[ -e /sys/class/net/$1/tun_flags && $(readlink -- "/sys/class/net/$1/master" 2>/dev/null) == */"$2" ]]
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
