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
