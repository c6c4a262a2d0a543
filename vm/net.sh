#!/usr/bin/env bash
# net.sh — the host side of the test network: one Linux bridge with an address, which the VMs'
# taps (vm.sh) join. Nothing is routed or NATed anywhere else.
set -euo pipefail

PROG=net.sh
ALIAS="fou-tunnel test bridge"

usage() {
	cat <<EOF
Usage:
  $PROG up --bridge NAME --address IP/PREFIX
  $PROG down --bridge NAME [--force]
  $PROG status --bridge NAME [--address IP/PREFIX]
  $PROG reclaim

up      Creates bridge NAME (STP off, forward delay 0) with address IP/PREFIX and sets it up.
        Refuses if any part of the subnet is already routed or assigned elsewhere (another
        interface, table local, ...). Running it again on the same bridge and address is a no-op;
        a bridge of that name that this script did not make is refused.
        Prints {"bridge":..,"address":..,"created":true|false}.
down    Deletes bridge NAME; fine if it does not exist. Refuses a bridge this script did not
        create (its alias is not "$ALIAS") unless --force.
status  Exit 0 if bridge NAME exists, is up and (with --address) has that address; 1 if not.
reclaim Deletes every bridge this script created whose VMs are all gone (no process holds any
        of its taps open: their qemus were killed, or this machine's session ended), with its
        taps. What a run killed before its destroy leaves; a bridge with a live VM is kept.
        Prints one line per bridge deleted.
Needs root.
EOF
}

# shellcheck source=vm/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"

ip2int() { # a.b.c.d -> integer
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	printf '%s\n' $(((a << 24) | (b << 16) | (c << 8) | d))
}
# two prefixes overlap iff they agree on the bits of the shorter one
overlaps() { # IP1 LEN1 IP2 LEN2
	local x y l=$2 m
	((l > $4)) && l=$4
	x=$(ip2int "$1")
	y=$(ip2int "$3")
	((l == 0)) && return 0
	m=$(((0xffffffff << (32 - l)) & 0xffffffff))
	(((x & m) == (y & m)))
}

check_bridge_name() {
	[[ $1 =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage_die "--bridge must be an interface name (max 15 chars), got '$1'"
}

is_bridge() { [[ -d /sys/class/net/$1/bridge ]]; }

parse_args() { # sets BRIDGE ADDRESS FORCE
	BRIDGE='' ADDRESS='' FORCE=0
	parse_options --bridge=BRIDGE --address=ADDRESS --force:FORCE=1 -h -- "$@"
	[[ -n $BRIDGE ]] || usage_die "--bridge is required"
	check_bridge_name "$BRIDGE"
}

# Routes (all tables) that cover any part of NET/LEN and do not go through BRIDGE.
conflicting_routes() { # NET LEN BRIDGE
	local net=$1 len=$2 br=$3 line dst dev plen
	local -a f
	while IFS= read -r line; do
		read -r -a f <<<"$line"
		case ${f[0]} in
		local | broadcast | unicast | unreachable | blackhole | prohibit | multicast | throw | anycast | nat)
			dst=${f[1]}
			;;
		*) dst=${f[0]} ;;
		esac
		[[ $dst == default ]] && continue # a default route is not a claim on this subnet
		dev=''
		if [[ $line =~ \ dev\ ([^ ]+) ]]; then dev=${BASH_REMATCH[1]}; fi
		[[ $dev == "$br" ]] && continue
		plen=32
		if [[ $dst == */* ]]; then
			plen=${dst#*/}
			dst=${dst%/*}
		fi
		[[ $dst =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || continue
		if overlaps "$dst" "$plen" "$net" "$len"; then
			printf '%s\n' "$line"
		fi
	done < <(ip -4 -o route show table all)
}

# Addresses this host talks to through its uplink: name servers, gateways, the apt mirrors and
# proxies, and the peers of open connections not made from inside NET. A bridge whose subnet
# contains one of them hijacks that traffic (e.g. the apt mirror) even though no route conflicts.
in_use_addresses() { # NET LEN
	local net=$1 len=$2 a h
	{
		awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null || true
		ip -4 -o route show table all | grep -o ' via [0-9.]*' | cut -d' ' -f3 || true
		{
			cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true
			apt-config dump 2>/dev/null | grep -i 'proxy' || true
			printf '%s\n' "${http_proxy:-}" "${https_proxy:-}" "${HTTP_PROXY:-}" "${HTTPS_PROXY:-}"
		} | grep -v '^[[:space:]]*#' | grep -oE 'https?://[^/ "]+' | sed -E 's|^https?://||; s|^.*@||; s|:[0-9]+$||' |
			sort -u | while read -r h; do
				if [[ $h =~ ^[0-9.]+$ ]]; then
					printf '%s\n' "$h"
				else
					timeout 3 getent ahostsv4 "$h" 2>/dev/null | awk '{ print $1 }' || true
				fi
			done
		# established TCP/UDP: "local:port peer:port"
		ss -Htun 2>/dev/null | awk '{ print $5, $6 }' | while read -r l r; do
			l=${l%:*} r=${r%:*}
			[[ $l =~ ^[0-9.]+$ && $r =~ ^[0-9.]+$ ]] || continue
			overlaps "$l" 32 "$net" "$len" && continue # a connection from inside, e.g. SSH to a VM
			printf '%s\n' "$r"
		done
	} | sort -u | while read -r a; do
		[[ $a =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || continue
		if overlaps "$a" 32 "$net" "$len"; then printf '%s\n' "$a"; fi
	done
}

cmd_up() {
	parse_args "$@"
	[[ $ADDRESS =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] ||
		usage_die "--address must be IPv4/PREFIX, got '$ADDRESS'"
	local o len=${BASH_REMATCH[5]} ip=${ADDRESS%/*}
	for o in 1 2 3 4; do ((BASH_REMATCH[o] <= 255)) || usage_die "bad address $ADDRESS"; done
	((len >= 8 && len <= 30)) || usage_die "prefix length must be 8..30, got $len"
	[[ $(id -u) -eq 0 ]] || die "must run as root"

	if link_exists "$BRIDGE"; then
		is_bridge "$BRIDGE" || die "$BRIDGE exists and is not a bridge"
		# ours (an earlier or interrupted up made it): adopt it; anyone else's: leave it alone.
		# An up killed between creating the bridge and naming it leaves one without an alias,
		# ports or addresses: that one is ours too.
		local alias
		alias=$(cat "/sys/class/net/$BRIDGE/ifalias" 2>/dev/null || true)
		if [[ -z $alias && -z $(ls -A "/sys/class/net/$BRIDGE/brif" 2>/dev/null) && -z $(ip -o addr show dev "$BRIDGE" 2>/dev/null) ]]; then
			ip link set dev "$BRIDGE" alias "$ALIAS"
		elif [[ $alias != "$ALIAS" ]]; then
			die "bridge $BRIDGE exists but was not created by $PROG (no alias '$ALIAS'); not using it"
		fi
	fi
	local conflicts
	conflicts=$(conflicting_routes "$ip" "$len" "$BRIDGE")
	if [[ -n $conflicts ]]; then
		printf '%s: error: %s is already routed or assigned outside %s:\n%s\n' \
			"$PROG" "$ADDRESS" "$BRIDGE" "$conflicts" >&2
		exit 1
	fi

	local used
	used=$(in_use_addresses "$ip" "$len")
	if [[ -n $used ]]; then
		printf '%s: error: %s contains addresses this host uses via its uplink (name server, gateway, apt mirror, proxy or open connection): %s\n' \
			"$PROG" "$ADDRESS" "$(tr '\n' ' ' <<<"$used")" >&2
		exit 1
	fi

	local created=false
	if ! link_exists "$BRIDGE"; then
		log "creating bridge $BRIDGE"
		if ! ip link add name "$BRIDGE" type bridge stp_state 0 forward_delay 0; then
			is_bridge "$BRIDGE" || die "cannot create bridge $BRIDGE"
		fi
		ip link set dev "$BRIDGE" alias "$ALIAS"
		created=true
	fi
	if ! ip -4 -o addr show dev "$BRIDGE" | grep -qF " inet $ADDRESS "; then
		log "adding $ADDRESS to $BRIDGE"
		ip addr add "$ADDRESS" dev "$BRIDGE" || die "cannot add $ADDRESS to $BRIDGE"
	fi
	ip link set dev "$BRIDGE" up || die "cannot set $BRIDGE up"
	printf '{"bridge":"%s","address":"%s","created":%s}\n' "$BRIDGE" "$ADDRESS" "$created"
}

cmd_down() {
	parse_args "$@"
	[[ -z $ADDRESS ]] || usage_die "down takes no --address"
	[[ $(id -u) -eq 0 ]] || die "must run as root"
	if ! link_exists "$BRIDGE"; then
		log "$BRIDGE: already gone"
		return 0
	fi
	is_bridge "$BRIDGE" || die "$BRIDGE is not a bridge; not deleting it"
	local alias=''
	alias=$(cat "/sys/class/net/$BRIDGE/ifalias" 2>/dev/null || true)
	if [[ $alias != "$ALIAS" ]] && ((!FORCE)); then
		die "$BRIDGE was not created by $PROG (alias '$alias'); use --force to delete it anyway"
	fi
	local ports
	ports=$(find "/sys/class/net/$BRIDGE/brif" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)
	[[ -z $ports ]] || log "warning: $BRIDGE still has ports: $ports(they are detached)"
	if ! ip link del dev "$BRIDGE"; then
		link_exists "$BRIDGE" && die "cannot delete $BRIDGE"
	fi
	log "deleted $BRIDGE"
}

cmd_status() {
	parse_args "$@"
	is_bridge "$BRIDGE" || {
		log "$BRIDGE: absent"
		return 1
	}
	ip -4 -o addr show dev "$BRIDGE" >&2
	local flags
	flags=$(<"/sys/class/net/$BRIDGE/flags") # hex, IFF_UP = 1
	((flags & 1)) || {
		log "$BRIDGE: down"
		return 1
	}
	if [[ -n $ADDRESS ]] && ! ip -4 -o addr show dev "$BRIDGE" | grep -qF " inet $ADDRESS "; then
		log "$BRIDGE: has no address $ADDRESS"
		return 1
	fi
}

cmd_reclaim() {
	(($# == 0)) || usage_die "reclaim takes no arguments"
	[[ $(id -u) -eq 0 ]] || die "must run as root"
	local dir br port alias live addr
	local -a ports
	for dir in /sys/class/net/*/bridge; do
		[[ -d $dir ]] || continue
		br=${dir%/bridge}
		br=${br##*/}
		alias=$(cat "/sys/class/net/$br/ifalias" 2>/dev/null || true)
		[[ $alias == "$ALIAS" ]] || continue
		ports=()
		live=0
		for port in "/sys/class/net/$br/brif"/*; do
			[[ -e $port ]] || continue
			port=${port##*/}
			# a port that is no tap (a veth, a real NIC) was put there by hand: keep the bridge
			if [[ ! -e /sys/class/net/$port/tun_flags ]] || tap_in_use "$port"; then
				live=1
				break
			fi
			ports+=("$port")
		done
		if ((live)); then
			log "$br: a live VM (a tap held open) or a port that is no tap is attached; kept"
			continue
		fi
		addr=$(ip -4 -o addr show dev "$br" 2>/dev/null | awk '{print $4}' | paste -sd' ')
		for port in "${ports[@]}"; do
			ip link del dev "$port" 2>/dev/null || ! link_exists "$port" || die "cannot delete tap $port"
		done
		ip link del dev "$br" 2>/dev/null || ! link_exists "$br" || die "cannot delete $br"
		printf '%s: reclaimed %s (%s) and its taps: %s\n' "$PROG" "$br" "${addr:-no address}" "${ports[*]:-none}"
	done
}

run_subcommand up down status reclaim -- "$@"
