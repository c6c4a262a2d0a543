# shellcheck shell=bash
# lib.sh — what the vm/ tests share: messages, a failure that names the test, timings, the root
# check. Sourced after PROG is set.
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: FAIL: %s\n' "$PROG" "$*" >&2
	exit 1
}
now() { printf '%s\n' "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
