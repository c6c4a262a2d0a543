# vm-status.sh — `vm.sh status`: exit 0 and print the stored report if the VM runs, has
# answered SSH and its tap is on its bridge; else exit 1 saying which. Sourced by vm.sh.
# shellcheck shell=bash

cmd_status() {
	local state=''
	parse_options --state-dir=state -h @status -- "$@"
	state=$(state_dir_path "$state")
	local line tap bridge
	if line=$(print_json_if_running "$state"); then
		if ! tap=$(json_field "$state/vm.json" tap) || ! bridge=$(json_field "$state/vm.json" bridge); then
			die "$state/vm.json names no tap or bridge"
		fi
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
