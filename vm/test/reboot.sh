#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2029 # remote command strings are expanded by the VM's shell, on purpose
# reboot.sh — a test VM behaves like a real host across a reboot from inside: what was written
# under /etc and /var/lib before it (marker files, a systemd unit enabled with systemctl, a line in
# /etc/sysctl.conf) is still there and in effect after it, what was written elsewhere is gone,
# and the VM keeps its qemu process, address and SSH host key. Two reboots (`systemctl reboot`,
# then `reboot`); then vm.sh stop must leave nothing behind.
set -euo pipefail

PROG=reboot.sh
HERE=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
VM=$HERE/..

usage() {
	cat <<EOF
Usage: $PROG [--help]

Environment:
  FOU_REBOOT_PREFIX  interface name prefix (default frb: bridge frb-br, tap frb-r1)
  FOU_REBOOT_NET     first three octets of the test /24 (default 198.51.100; must not be routed)
  FOU_REBOOT_TIMEOUT seconds to wait for SSH after a reboot (default 180)
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

P=${FOU_REBOOT_PREFIX:-frb}
NET=${FOU_REBOOT_NET:-198.51.100}
REBOOT_TIMEOUT=${FOU_REBOOT_TIMEOUT:-180}
BR=$P-br
TAP=$P-r1
GW=$NET.1
IP=$NET.171
((${#BR} <= 15 && ${#TAP} <= 15)) || die "FOU_REBOOT_PREFIX too long"
[[ $REBOOT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "FOU_REBOOT_TIMEOUT must be a positive integer"

TMP=$(mktemp -d /tmp/fou-reboot.XXXXXX)
STATE=$TMP/state/r1
mkdir -p -- "$TMP/state"
BRIDGE_UP=0

cleanup() {
	local rc=$?
	trap - EXIT
	if [[ -e $STATE ]]; then
		"$VM/vm.sh" stop --state-dir "$STATE" --tap "$TAP" >/dev/null 2>&1 || log "cleanup: vm.sh stop failed"
	fi
	if ((BRIDGE_UP)) && [[ -e /sys/class/net/$BR ]]; then
		"$VM/net.sh" down --bridge "$BR" >/dev/null 2>&1 || log "cleanup: net.sh down failed"
	fi
	rm -rf -- "$TMP"
	((rc == 0)) || log "failed (exit $rc); cleaned up"
	exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------------ image, network, VM
log "building the image (cached after the first run)"
IMAGE=$("$VM/build-image.sh" | tail -n1)
[[ -s $IMAGE/vmlinuz && -s $IMAGE/root.img && -s $IMAGE/initrd.cpio ]] || die "build-image.sh gave no image ($IMAGE)"

[[ ! -e /sys/class/net/$BR ]] || die "$BR already exists (a previous run still up?)"
"$VM/net.sh" up --bridge "$BR" --address "$GW/24" >/dev/null
BRIDGE_UP=1

ssh-keygen -q -t ed25519 -N '' -C fou-reboot -f "$TMP/id" >/dev/null
KEY=$(<"$TMP/id.pub")

log "starting r1 ($IP)"
"$VM/vm.sh" start --name r1 --address "$IP/24" --bridge "$BR" --tap "$TAP" --mac 52:54:00:00:01:71 \
	--state-dir "$STATE" --authorized-key "$KEY" --image "$IMAGE" >"$TMP/r1.json" 2>"$TMP/r1.err" || {
	cat "$TMP/r1.err" >&2
	die "vm.sh start r1 failed"
}
json_val() { grep -o "\"$2\":\(\"[^\"]*\"\|[0-9.]*\|true\|false\)" "$1" | head -n1 | cut -d: -f2- | tr -d '"'; }
QPID=$(json_val "$TMP/r1.json" pid)
BOOT=$(json_val "$TMP/r1.json" bootSeconds)
HOSTKEY=$(json_val "$TMP/r1.json" hostKey)
[[ $(json_val "$TMP/r1.json" persist) == true ]] || die "vm.sh start did not report persist:true"
[[ $HOSTKEY == ssh-ed25519\ * ]] || die "no hostKey in the start JSON"
log "r1 up in $BOOT s (qemu pid $QPID)"

# SSH pinned to the host key vm.sh reported: after a reboot, a different key fails the connection.
printf '%s %s\n' "$IP" "$HOSTKEY" >"$TMP/known_hosts"
SSH_OPTS=(-i "$TMP/id" -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$TMP/known_hosts"
	-o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=5 -o ServerAliveInterval=2 -o ServerAliveCountMax=3)
on() { ssh "${SSH_OPTS[@]}" "root@$IP" "$@"; }

qemu_running() { # the same qemu as at start, per vm.sh status
	local st
	st=$("$VM/vm.sh" status --state-dir "$STATE" 2>/dev/null) || return 1
	[[ $st == *"\"pid\":$QPID,"* ]] && [[ -r /proc/$QPID/cmdline ]]
}

boot_id() { on cat /proc/sys/kernel/random/boot_id; }
ssh_banner() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/22" && IFS= read -r -t 1 line <&3 && [[ $line == SSH-* ]]' _ "$IP" 2>/dev/null
}

# Reboot with COMMAND over SSH, then wait until SSH answers from a new boot. Sets REBOOT_SECS and
# BOOT_ID.
reboot_vm() { # COMMAND
	local old=$BOOT_ID t id deadline
	t=$(now)
	# the session ends when sshd stops (or hangs until ServerAlive gives up): its status says nothing
	timeout 60 ssh "${SSH_OPTS[@]}" "root@$IP" "$1" >"$TMP/reboot.out" 2>&1 || true
	deadline=$((SECONDS + REBOOT_TIMEOUT))
	while :; do
		((SECONDS < deadline)) || die "no SSH from a new boot of r1 within $REBOOT_TIMEOUT s after '$1'"
		qemu_running || {
			tail -n 25 "$STATE/console.log" 2>/dev/null | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/\r//g' >&2 || true
			die "qemu $QPID is no longer running after '$1' (vm.sh status)"
		}
		# sshd's banner first (a connect to a VM that is still booting only times out), then SSH
		if ssh_banner && id=$(boot_id 2>/dev/null) && [[ -n $id && $id != "$old" ]]; then
			break
		fi
		sleep 0.5
	done
	REBOOT_SECS=$(since "$t")
	BOOT_ID=$id
	log "'$1': SSH from the new boot after $REBOOT_SECS s"
}

# ------------------------------------------------------------------ before the first reboot
BOOT_ID=$(boot_id) || die "ssh to r1"
TOKEN=$(tr -d '-' </proc/sys/kernel/random/uuid)
log "writing markers under /etc and /var/lib, enabling fou-reboot-test.service"
on "set -e
echo $TOKEN >/etc/fou-reboot-marker
mkdir -p /var/lib/fou-reboot /etc/fou-reboot
echo $TOKEN >/var/lib/fou-reboot/marker
echo $TOKEN >/etc/fou-reboot/marker
echo $TOKEN >/root/volatile-marker
echo $TOKEN >/var/tmp/volatile-marker
cat >/etc/systemd/system/fou-reboot-test.service <<'EOF'
[Unit]
Description=fou-tunnel reboot test: records the boot it ran in
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'cat /proc/sys/kernel/random/boot_id >/run/fou-reboot-test'
[Install]
WantedBy=multi-user.target
EOF
systemctl enable fou-reboot-test.service 2>&1
test -L /etc/systemd/system/multi-user.target.wants/fou-reboot-test.service
printf '# fou-tunnel reboot test\nnet.ipv4.ip_forward = 1\n' >>/etc/sysctl.conf
test \"\$(sysctl -n net.ipv4.ip_forward)\" = 0
test ! -e /run/fou-reboot-test
sync" >"$TMP/setup.log" 2>&1 || {
	cat "$TMP/setup.log" >&2
	die "setting up the markers on r1"
}

# ------------------------------------------------------------------ reboot 1: systemctl reboot
reboot_vm "systemctl reboot"
T1=$REBOOT_SECS

check_after_reboot() { # N
	local out
	out=$(on "set -e
cat /etc/fou-reboot-marker /etc/fou-reboot/marker /var/lib/fou-reboot/marker
systemctl is-enabled fou-reboot-test.service
systemctl is-active fou-reboot-test.service || true
cat /run/fou-reboot-test
sysctl -n net.ipv4.ip_forward
test -e /root/volatile-marker && echo root-kept || echo root-gone
test -e /var/tmp/volatile-marker && echo var-tmp-kept || echo var-tmp-gone
cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub
ip -4 -o addr show dev eth0 | awk '{ print \$4 }'
hostname" 2>&1) || {
		printf '%s\n' "$out" >&2
		die "after reboot $1: reading the state of r1"
	}
	local -a l
	mapfile -t l <<<"$out"
	((${#l[@]} == 12)) || {
		printf '%s\n' "$out" >&2
		die "after reboot $1: unexpected output"
	}
	[[ ${l[0]} == "$TOKEN" ]] || die "after reboot $1: /etc/fou-reboot-marker is '${l[0]}'"
	[[ ${l[1]} == "$TOKEN" ]] || die "after reboot $1: /etc/fou-reboot/marker is '${l[1]}'"
	[[ ${l[2]} == "$TOKEN" ]] || die "after reboot $1: /var/lib/fou-reboot/marker is '${l[2]}'"
	[[ ${l[3]} == enabled ]] || die "after reboot $1: fou-reboot-test.service is '${l[3]}', not enabled"
	# a oneshot without RemainAfterExit is inactive once done; what matters is the file below
	[[ ${l[5]} == "$BOOT_ID" ]] || die "after reboot $1: the unit did not run in this boot (/run/fou-reboot-test '${l[5]}', boot $BOOT_ID)"
	[[ ${l[6]} == 1 ]] || die "after reboot $1: /etc/sysctl.conf not applied (ip_forward ${l[6]})"
	[[ ${l[7]} == root-gone ]] || die "after reboot $1: /root/volatile-marker survived (only /etc and /var/lib should)"
	[[ ${l[8]} == var-tmp-gone ]] || die "after reboot $1: /var/tmp/volatile-marker survived"
	[[ ${l[9]} == "$HOSTKEY" ]] || die "after reboot $1: host key changed: ${l[9]}"
	[[ ${l[10]} == "$IP/24" ]] || die "after reboot $1: eth0 has ${l[10]}, not $IP/24"
	[[ ${l[11]} == r1 ]] || die "after reboot $1: hostname ${l[11]}"
}
check_after_reboot 1
log "after 'systemctl reboot': markers, unit, sysctl, host key, address as expected"

# ------------------------------------------------------------------ reboot 2: reboot, after changes
on "set -e; echo $TOKEN >/root/volatile-marker; echo second >>/var/lib/fou-reboot/marker" ||
	die "second round of changes"
reboot_vm reboot
T2=$REBOOT_SECS
on "tail -n1 /var/lib/fou-reboot/marker" | grep -qx second || die "a change made after the first reboot was lost"
on "sed -i '\$d' /var/lib/fou-reboot/marker" || die "undoing the second change"
check_after_reboot 2
n=$(sed 's/\x1b\[[0-9;]*m//g' "$STATE/console.log" | grep -c 'fou-vm-init: /dev/vd. (serial fou-persist) on /persist') || true
((n == 3)) || die "console.log shows $n boots with the persistent disk, not 3"
if grep -qa 'EXT4-fs (vd.): recovery complete\|EXT4-fs error' "$STATE/console.log"; then
	die "the persistent disk was not unmounted cleanly at a reboot (see console.log)"
fi
log "after 'reboot': the same; 3 boots in one qemu ($QPID), the disk unmounted cleanly each time"

# ------------------------------------------------------------------ stop, leftovers
"$VM/vm.sh" stop --state-dir "$STATE" || die "vm.sh stop"
"$VM/vm.sh" stop --state-dir "$STATE" 2>/dev/null || die "second vm.sh stop is not a no-op"
if [[ -r /proc/$QPID/cmdline ]] && tr '\0' '\n' <"/proc/$QPID/cmdline" | grep -qF -- "$STATE"; then
	die "qemu $QPID is still running"
fi
for f in /proc/[0-9]*/cmdline; do
	if tr '\0' '\n' <"$f" 2>/dev/null | grep -qF -- "$STATE"; then die "a process still refers to $STATE: $f"; fi
done
[[ ! -e /sys/class/net/$TAP ]] || die "tap $TAP still exists"
[[ ! -e $STATE ]] || die "state dir $STATE still exists: $(ls -A "$STATE")"
"$VM/net.sh" down --bridge "$BR" >/dev/null || die "net.sh down"
BRIDGE_UP=0
[[ ! -e /sys/class/net/$BR ]] || die "bridge $BR still exists"

cat <<EOF
reboot test passed
  boot to SSH (vm.sh start):                      $BOOT s
  reboot to SSH, 'systemctl reboot' (over SSH):   $T1 s
  reboot to SSH, 'reboot':                        $T2 s
EOF
