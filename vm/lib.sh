# Shared by the vm/ scripts (sourced after each sets PROG): messages on stderr, prefixed
# with the script's name; taps; the subcommand dispatch and the option parsing of their
# command lines.
# shellcheck shell=bash

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}
usage_die() {
	printf '%s: error: %s (see %s --help)\n' "$PROG" "$*" "$PROG" >&2
	exit 2
}

link_exists() { [[ -e /sys/class/net/$1 ]]; }

# Some process has the tun/tap device open ("iff: NAME" in its fdinfo).
tap_in_use() {
	local tap=$1 f
	for f in /proc/[0-9]*/fdinfo/*; do
		grep -qsx "iff:[[:space:]]*$tap" "$f" 2>/dev/null && return 0
	done
	return 1
}

# Runs the subcommand the first argument names: cmd_NAME with the remaining arguments, for a
# NAME listed before the --. -h, --help and help print the usage; no argument prints it on
# stderr and exits 2; any other word is a usage error.
run_subcommand() { # NAME... -- ARG...
	local -a names=()
	local sub name known=0
	while [[ $1 != -- ]]; do
		names+=("$1")
		shift
	done
	shift
	if (($# == 0)); then
		usage >&2
		exit 2
	fi
	sub=$1
	shift
	case $sub in
	-h | --help | help)
		usage
		return 0
		;;
	esac
	for name in "${names[@]}"; do [[ $name != "$sub" ]] || known=1; done
	((known)) || usage_die "unknown command: $sub"
	# a plain statement, not part of a condition, so errexit stays on inside the command
	"cmd_$sub" "$@"
}

# Parses options into the caller's variables (bash's dynamic scope: the caller declares them
# local, or they are globals). The SPECs come before the --, the arguments after it:
#   --opt=VAR      the option takes a value, stored in VAR
#   --opt:VAR=VAL  a flag: VAR is set to VAL
#   -h             -h and --help print the usage and exit 0
#   @WHERE         errors say "unknown argument to WHERE: ARG" (else "unknown argument: ARG")
# Errors are usage errors (exit 2): "OPT needs a value", "unknown argument…".
parse_options() { # SPEC... -- ARG...
	local -a _po_specs=()
	local _po_where='' _po_s _po_n
	while [[ $1 != -- ]]; do
		case $1 in
		@*) _po_where=" to ${1#@}" ;;
		*) _po_specs+=("$1") ;;
		esac
		shift
	done
	shift
	while (($#)); do
		_po_n=0
		for _po_s in "${_po_specs[@]}"; do
			if [[ $_po_s == "$1="* ]]; then
				(($# >= 2)) || usage_die "$1 needs a value"
				printf -v "${_po_s#*=}" '%s' "$2"
				_po_n=2
			elif [[ $_po_s == "$1:"* ]]; then
				_po_s=${_po_s#*:}
				printf -v "${_po_s%%=*}" '%s' "${_po_s#*=}"
				_po_n=1
			elif [[ $_po_s == -h && ($1 == -h || $1 == --help) ]]; then
				usage
				exit 0
			fi
			((_po_n == 0)) || break
		done
		((_po_n)) || usage_die "unknown argument$_po_where: $1"
		shift "$_po_n"
	done
}
