# Shared by the vm/ scripts (sourced after each sets PROG): messages on stderr, prefixed
# with the script's name.
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
