# shellcheck shell=bash
# Shared by the vm/disk scripts (sourced after each sets PROG): the project's cache location,
# messages on stderr, and where the disk image and the kernel repository are kept.
DISK_DIR=$(cd "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=scripts/lib.sh
. "$DISK_DIR/../../scripts/lib.sh"
# shellcheck source=vm/lib.sh
. "$DISK_DIR/../lib.sh"

# shellcheck disable=SC2034 # used by the scripts that source this file
DISK_CACHE="$FOU_CACHE/disk"
# shellcheck disable=SC2034
DISK_SUITE=bookworm

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

# The Debian mirror apt uses here (first deb822 URIs or sources.list line for the main
# archive); FOU_MIRROR overrides it.
apt_mirror() {
	if [[ -n ${FOU_MIRROR:-} ]]; then
		printf '%s\n' "$FOU_MIRROR"
		return
	fi
	local m
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')
	if [[ -z $m ]]; then
		m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
			/etc/apt/sources.list 2>/dev/null || true)
	fi
	[[ -n $m ]] || die "cannot find the apt mirror in /etc/apt/sources.list{,.d}; set FOU_MIRROR"
	printf '%s\n' "${m%/}"
}

# Installs the Debian packages that provide the given commands, if any is missing.
ensure_tools() { # cmd:package ...
	local pair missing=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
	((${#missing[@]})) || return 0
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
		die "cannot install ${missing[*]}"
}

json_str() { # a JSON string literal
	jq -Rn --arg s "$1" '$s'
}

# Closes every descriptor above 2 in this (sub)shell, so a daemon started from it holds none of
# the caller's pipes or lock files (flock's descriptor would otherwise outlive the caller).
close_fds() {
	local fd n
	for fd in "/proc/$BASHPID/fd"/*; do
		n=${fd##*/}
		if [[ $n =~ ^[0-9]+$ ]] && ((n > 2)); then eval "exec $n>&-"; fi
	done 2>/dev/null
}
