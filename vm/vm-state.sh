# vm-state.sh — a VM's state dir and the files vm.sh keeps in it: the path checks, the marker
# that makes a directory ours, the console, the stored JSON report. Sourced by vm.sh.
# shellcheck shell=bash

MARKER=.fou-tunnel-vm # a state dir of vm.sh holds this file; stop removes no other non-empty dir

# Resolves a state dir path: absolute, not /, without a newline.
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

# Prints the stored report if the VM of STATE runs and has answered SSH (vm.json exists).
print_json_if_running() { # STATE
	local state=$1 line
	qemu_pid "$state" >/dev/null || return 1
	[[ -s $state/vm.json ]] || return 1
	line=$(<"$state/vm.json")
	# the stored line carries the PID at start time; it is the same process (pidfile checked)
	printf '%s\n' "$line"
}

json_str() { # JSON string literal
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\t'/\\t}
	s=${s//$'\r'/\\r}
	printf '"%s"' "$s"
}

json_field() { # FILE FIELD -> the string or number value (flat JSON that vm.sh writes only)
	local v
	v=$(grep -o "\"$2\":\(\"[^\"]*\"\|[0-9.]*\|true\|false\)" "$1" | head -n1) || return 1
	v=${v#*:}
	v=${v#\"}
	printf '%s\n' "${v%\"}"
}
