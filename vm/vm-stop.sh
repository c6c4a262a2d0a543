# vm-stop.sh — `vm.sh stop`: end the VM's qemu, delete its tap, remove its state dir; anything
# already gone is fine. Sourced by vm.sh.
# shellcheck shell=bash

cmd_stop() {
	local state='' tap=''
	parse_options --state-dir=state --tap=tap -h @stop -- "$@"
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
