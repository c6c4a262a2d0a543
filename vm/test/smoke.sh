#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2029 # remote command strings are expanded by the VM's shell, on purpose
# smoke.sh — end-to-end check of build-image.sh, net.sh and vm.sh: two new-kernel VMs run the
# FOU guide by hand over SSH (ping through the tunnel, tcpdump sees UDP to port 5555), a third VM
# started with --no-fou cannot load fou, and everything is gone afterwards.
set -euo pipefail

PROG=smoke.sh
HERE=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
VM=$HERE/..

usage() {
	cat <<EOF
Usage: $PROG [--help]

Environment:
  FOU_SMOKE_PREFIX  interface name prefix (default fsm: bridge fsm-br, taps fsm-k1..fsm-k3)
  FOU_SMOKE_NET     first three octets of the test /24 (default 198.51.100; must not be routed)
  FOU_ACCEL, FOU_BOOT_TIMEOUT, FOU_CACHE as for vm.sh / build-image.sh
Needs root. Exits non-zero on any failure; prints timings at the end.
EOF
}
case ${1:-} in
-h | --help)
	usage
	exit 0
	;;
'') ;;
*)
	usage >&2
	exit 2
	;;
esac

# shellcheck source=vm/test/lib.sh
. "$HERE/lib.sh"

P=${FOU_SMOKE_PREFIX:-fsm}
NET=${FOU_SMOKE_NET:-198.51.100}
BR=$P-br
GW=$NET.1
IP1=$NET.151
IP2=$NET.152
IP3=$NET.153
((${#BR} <= 15)) || die "FOU_SMOKE_PREFIX too long"

TMP=$(mktemp -d /tmp/fou-smoke.XXXXXX)
STATE=$TMP/state
mkdir -p -- "$STATE"
NAMES=(k1 k2 k3)

cleanup() {
	local rc=$? n
	trap - EXIT
	for n in "${NAMES[@]}"; do
		if [[ -e $STATE/$n ]]; then
			"$VM/vm.sh" stop --state-dir "$STATE/$n" --tap "$P-$n" >/dev/null 2>&1 ||
				log "cleanup: vm.sh stop $n failed"
		fi
	done
	if [[ -e /sys/class/net/$BR ]]; then
		"$VM/net.sh" down --bridge "$BR" >/dev/null 2>&1 || log "cleanup: net.sh down failed"
	fi
	rm -rf -- "$TMP"
	((rc == 0)) || log "failed (exit $rc); cleaned up"
	exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------------ image
log "building the image (cached after the first run)"
t=$(now)
IMAGE=$("$VM/build-image.sh" | tail -n1)
T_IMAGE=$(since "$t")
[[ -s $IMAGE/vmlinuz && -s $IMAGE/root.img && -s $IMAGE/initrd.cpio ]] || die "build-image.sh gave no image ($IMAGE)"
log "image $IMAGE ($T_IMAGE s)"

# ------------------------------------------------------------------ network
[[ ! -e /sys/class/net/$BR ]] || die "$BR already exists (a previous run still up?)"
"$VM/net.sh" up --bridge "$BR" --address "$GW/24" >/dev/null
"$VM/net.sh" up --bridge "$BR" --address "$GW/24" >/dev/null # idempotent

ssh-keygen -q -t ed25519 -N '' -C fou-smoke -f "$TMP/id" >/dev/null
KEY=$(<"$TMP/id.pub")
SSH_OPTS=(-i "$TMP/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=15)
on() { # IP COMMAND...
	local ip=$1
	shift
	ssh "${SSH_OPTS[@]}" "root@$ip" "$@"
}

start_vm() { # NAME IP MAC [extra args]
	local n=$1 ip=$2 mac=$3
	shift 3
	"$VM/vm.sh" start --name "$n" --address "$ip/24" --bridge "$BR" --tap "$P-$n" --mac "$mac" \
		--state-dir "$STATE/$n" --authorized-key "$KEY" --image "$IMAGE" "$@"
}
json_num() { grep -o "\"$2\":[0-9.]*" "$1" | head -n1 | cut -d: -f2; }

# ------------------------------------------------------------------ two VMs in parallel
log "starting k1 and k2 in parallel"
t=$(now)
start_vm k1 "$IP1" 52:54:00:00:01:51 >"$TMP/k1.json" 2>"$TMP/k1.err" &
pid1=$!
start_vm k2 "$IP2" 52:54:00:00:01:52 >"$TMP/k2.json" 2>"$TMP/k2.err" &
pid2=$!
rc1=0 rc2=0
wait "$pid1" || rc1=$?
wait "$pid2" || rc2=$?
T_BOTH=$(since "$t")
((rc1 == 0)) || {
	cat "$TMP/k1.err" >&2
	die "vm.sh start k1 failed"
}
((rc2 == 0)) || {
	cat "$TMP/k2.err" >&2
	die "vm.sh start k2 failed"
}
B1=$(json_num "$TMP/k1.json" bootSeconds)
B2=$(json_num "$TMP/k2.json" bootSeconds)
QPID1=$(json_num "$TMP/k1.json" pid)
QPID2=$(json_num "$TMP/k2.json" pid)
log "k1 up in $B1 s, k2 in $B2 s (both: $T_BOTH s)"

# start again: must only print the JSON
again=$(start_vm k1 "$IP1" 52:54:00:00:01:51 2>/dev/null)
[[ $again == "$(<"$TMP/k1.json")" ]] || die "second start of k1 did not return the same JSON"
"$VM/vm.sh" status --state-dir "$STATE/k1" >/dev/null || die "status k1 says not running"

t=$(now)
[[ $(on "$IP1" uname -r) == "$(<"$IMAGE/kernel-release")" ]] || die "k1 does not run the image kernel"
T_SSH=$(since "$t")
[[ $(on "$IP2" hostname) == k2 ]] || die "k2 hostname"
hk1=$(on "$IP1" cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)
hk2=$(on "$IP2" cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)
[[ $hk1 != "$hk2" ]] || die "k1 and k2 share a host key"
grep -qF "$hk1" "$TMP/k1.json" || die "k1 JSON hostKey differs from the VM's key"

# ------------------------------------------------------------------ the guide, by hand
log "running the guide on k1 and k2"
guide() { # LOCAL REMOTE LINK GWIP PEER_GWIP
	cat <<EOF
set -ex
uname -r
modinfo fou >/dev/null
modinfo --field=depends fou | grep -q ip_tunnel
modprobe fou
modprobe ipip
ip fou add port 5555 ipproto 4
ip link add $3 type ipip remote $2 local $1 ttl 255 dev eth0 encap fou encap-sport auto encap-dport 5555
ip link set $3 up
sysctl -q -w net.ipv4.ip_forward=1
ip addr add $4 dev $3
ip route add to $5 via $4 dev $3
ip -d link show $3 | grep -q 'encap fou encap-sport auto encap-dport 5555'
ip tunnel show $3 | grep -q "remote $2"
ip fou show | grep -q 'port 5555 ipproto 4'
EOF
}
on "$IP1" bash -s <<<"$(guide "$IP1" "$IP2" ftok2 10.10.10.1 10.10.10.2)" >"$TMP/guide1.log" 2>&1 ||
	{
		cat "$TMP/guide1.log" >&2
		die "guide on k1"
	}
on "$IP2" bash -s <<<"$(guide "$IP2" "$IP1" ftok1 10.10.10.2 10.10.10.1)" >"$TMP/guide2.log" 2>&1 ||
	{
		cat "$TMP/guide2.log" >&2
		die "guide on k2"
	}

# tcpdump on k2, detached from the SSH session; wait until it listens
on "$IP2" 'rm -f /tmp/td.out; setsid timeout 30 tcpdump -l -nn -i eth0 -c 6 udp port 5555 </dev/null >/tmp/td.out 2>&1 &
for i in $(seq 50); do grep -q "listening on" /tmp/td.out 2>/dev/null && exit 0; sleep 0.2; done; exit 1' ||
	die "tcpdump did not start on k2"
log "ping -I 10.10.10.1 10.10.10.2 on k1"
on "$IP1" ping -I 10.10.10.1 -c 3 -W 3 10.10.10.2 >"$TMP/ping.log" 2>&1 || {
	cat "$TMP/ping.log" >&2
	die "ping through the tunnel failed"
}
grep -q ' 0% packet loss' "$TMP/ping.log" || die "ping lost packets: $(tail -n2 "$TMP/ping.log")"
on "$IP2" 'for i in $(seq 50); do grep -q "packets captured" /tmp/td.out && break; sleep 0.2; done; cat /tmp/td.out' >"$TMP/td.out"
grep -Eq "IP $IP1\.[0-9]+ > $IP2\.5555: UDP" "$TMP/td.out" || {
	cat "$TMP/td.out" >&2
	die "tcpdump on k2 did not see UDP from k1 to port 5555"
}
grep -Eq "IP $IP2\.[0-9]+ > $IP1\.5555: UDP" "$TMP/td.out" || {
	cat "$TMP/td.out" >&2
	die "tcpdump on k2 did not see UDP from k2 to k1 port 5555"
}
log "tcpdump on k2: $(grep -m1 -E "> $IP2\.5555" "$TMP/td.out")"

# undo in reverse order on k1; `ip fou show` must be empty afterwards
on "$IP1" 'set -e; ip route del to 10.10.10.2 via 10.10.10.1 dev ftok2; ip addr del 10.10.10.1/32 dev ftok2;
ip link del ftok2; ip fou del port 5555 ipproto 4; test -z "$(ip fou show)"' || die "undo on k1"

# ------------------------------------------------------------------ a VM without fou
log "starting k3 with --no-fou"
start_vm k3 "$IP3" 52:54:00:00:01:53 --no-fou >"$TMP/k3.json" 2>"$TMP/k3.err" || {
	cat "$TMP/k3.err" >&2
	die "vm.sh start k3 failed"
}
B3=$(json_num "$TMP/k3.json" bootSeconds)
QPID3=$(json_num "$TMP/k3.json" pid)
if on "$IP3" modprobe fou >/dev/null 2>&1; then die "modprobe fou succeeded on the --no-fou VM"; fi
if on "$IP3" ip fou add port 5555 ipproto 4 >/dev/null 2>&1; then die "ip fou add succeeded on the --no-fou VM"; fi
on "$IP3" modprobe ipip || die "modprobe ipip failed on k3 (only fou should be missing)"
log "k3 (--no-fou) up in $B3 s; modprobe fou fails there"

# ------------------------------------------------------------------ teardown and leftovers
MEM1=$(ps -o rss= -p "$QPID1" 2>/dev/null | tr -d ' ' || true)
ACCEL=$(grep -o '"accel":"[a-z]*"' "$TMP/k1.json" | cut -d'"' -f4)
log "stopping everything"
for n in "${NAMES[@]}"; do
	"$VM/vm.sh" stop --state-dir "$STATE/$n" || die "vm.sh stop $n"
	"$VM/vm.sh" stop --state-dir "$STATE/$n" 2>/dev/null || die "second vm.sh stop $n is not a no-op"
done
"$VM/net.sh" down --bridge "$BR" >/dev/null || die "net.sh down"
"$VM/net.sh" down --bridge "$BR" 2>/dev/null || die "second net.sh down is not a no-op"

for pid in "$QPID1" "$QPID2" "$QPID3"; do
	if [[ -r /proc/$pid/cmdline ]] && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qF -- "$STATE"; then
		die "qemu $pid is still running"
	fi
done
for f in /proc/[0-9]*/cmdline; do
	if tr '\0' '\n' <"$f" 2>/dev/null | grep -qF -- "$STATE/"; then die "a process still refers to $STATE: $f"; fi
done
for l in "$BR" "$P-k1" "$P-k2" "$P-k3"; do
	[[ ! -e /sys/class/net/$l ]] || die "link $l still exists"
done
for n in "${NAMES[@]}"; do
	[[ ! -e $STATE/$n ]] || die "state dir $STATE/$n still exists"
done

cat <<EOF
smoke test passed ($ACCEL)
  image build (build-image.sh):        $T_IMAGE s
  boot to SSH, k1+k2 in parallel:       k1 $B1 s, k2 $B2 s (both ready after $T_BOTH s)
  boot to SSH, k3 alone (--no-fou):     $B3 s
  one SSH command, fresh connection:    $T_SSH s
  qemu RSS of k1:                       $((${MEM1:-0} / 1024)) MiB
EOF
