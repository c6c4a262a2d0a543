#!/usr/bin/env bash
# serve-repo.sh — serves a directory (the kernel repository) over HTTP on one address of this
# machine, in the background, with Node's built-in http module (serve-repo.js). The server's
# PID is kept in a state file, and only that process is ever stopped.
set -euo pipefail

PROG=serve-repo.sh
# shellcheck source=vm/disk/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"

usage() {
	cat <<EOF
Usage:
  $PROG start --dir DIR --address IP --port N --state FILE [--timeout 10]
  $PROG stop --state FILE
  $PROG status --state FILE

start   Starts node serve-repo.js DIR IP N detached (its log: FILE.log), writes its PID to FILE,
        waits until it answers and prints {"pid":..,"url":"http://IP:N/","dir":..,"log":..}.
        IP must be an address of this machine (e.g. the test bridge's 198.51.100.1). A server
        already recorded in FILE with the same settings is kept (same JSON); another is stopped.
stop    Stops the process FILE names (after checking it is this server), removes FILE and its
        log. Fine if it is already gone.
status  Exit 0 if the server FILE names runs, else 1.
EOF
}

SERVER_JS="$DISK_DIR/serve-repo.js"

# The PID in FILE if that process is our server, else nothing.
live_pid() { # STATE
	local pid cmd
	[[ -s $1 ]] || return 0
	read -r pid _ <"$1" || true
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
	[[ $cmd == *"$SERVER_JS "* ]] && printf '%s\n' "$pid"
}

answers() { # IP PORT
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

stop_pid() { # PID
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cmd_start() {
	local dir='' address='' port='' state='' timeout=10
	parse_options --dir=dir --address=address --port=port --state=state --timeout=timeout -- "$@"
	[[ -d $dir ]] || usage_die "--dir must be a directory"
	[[ $address =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || usage_die "--address must be an IPv4 address"
	if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then usage_die "--port must be 1..65535"; fi
	[[ -n $state ]] || usage_die "--state is required"
	[[ $timeout =~ ^[0-9]+$ ]] || usage_die "--timeout must be seconds"
	dir=$(readlink -f -- "$dir")
	local settings="$dir $address $port" pid json
	pid=$(live_pid "$state")
	if [[ -n $pid ]]; then
		if [[ $(sed -n 2p "$state") == "$settings" ]] && answers "$address" "$port"; then
			sed -n 3p "$state"
			return
		fi
		log "stopping the server with other settings (pid $pid)"
		stop_pid "$pid"
	fi
	ip -4 -o addr show | grep -qF " inet $address/" || die "$address is no address of this machine"
	ensure_tools jq:jq setsid:util-linux
	mkdir -p "$(dirname -- "$state")"
	# setsid + closed descriptors: the server outlives this script and holds none of its pipes
	(
		close_fds
		exec setsid node "$SERVER_JS" "$dir" "$address" "$port" </dev/null >"$state.log" 2>&1
	) &
	pid=$!
	local deadline=$((SECONDS + timeout))
	until answers "$address" "$port"; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
			stop_pid "$pid"
			cat "$state.log" >&2 || true
			die "the server did not answer on $address:$port"
		fi
		sleep 0.1
	done
	json=$(printf '{"pid":%s,"url":%s,"dir":%s,"log":%s}' "$pid" "$(json_str "http://$address:$port/")" \
		"$(json_str "$dir")" "$(json_str "$state.log")")
	printf '%s\n%s\n%s\n' "$pid" "$settings" "$json" >"$state"
	log "serving $dir on http://$address:$port/ (pid $pid)"
	printf '%s\n' "$json"
}

parse_state_arg() { # sets STATE
	STATE=''
	parse_options --state=STATE -- "$@"
	[[ -n $STATE ]] || usage_die "--state is required"
}

cmd_stop() {
	parse_state_arg "$@"
	local pid
	pid=$(live_pid "$STATE")
	if [[ -n $pid ]]; then
		stop_pid "$pid"
		log "stopped the server (pid $pid)"
	elif [[ -e $STATE ]]; then
		log "the server of $STATE is already gone"
	fi
	rm -f -- "$STATE" "$STATE.log"
}

cmd_status() {
	parse_state_arg "$@"
	[[ -n $(live_pid "$STATE") ]]
}

run_subcommand start stop status -- "$@"
