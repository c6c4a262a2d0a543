#!/usr/bin/env bash
# boottime.sh — where a VM's boot time goes: starts N VMs (default 1) in parallel on a bridge of
# its own, and per VM prints vm.sh's bootSeconds, the kernel's timestamps of a few console
# markers (initramfs unpacked, first process, systemd, root mounted), systemd-analyze (time and
# the critical chain to ssh.service) and qemu's peak RSS (VmHWM). Stops everything at the end.
# Run it under the VM lock: flock /tmp/fou-vm.lock vm/test/boottime.sh [N] [--memory MiB]
# Env: FOU_BT_PREFIX (name prefix, default fbt), FOU_BT_NET (default 198.51.100), FOU_BT_IMAGE
# (an image directory; default: build-image.sh's), FOU_BT_KEEP (a directory for the consoles).
set -euo pipefail

PROG=boottime.sh
HERE=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
VM=$HERE/../vm.sh
NET=$HERE/../net.sh
# shellcheck source=vm/test/lib.sh
. "$HERE/lib.sh"

COUNT=1
declare -a EXTRA=()
while (($#)); do
	case $1 in
	--memory)
		EXTRA+=(--memory "$2")
		shift 2
		;;
	--no-persist)
		EXTRA+=(--no-persist)
		shift
		;;
	[0-9]) COUNT=$1 && shift ;;
	*) die "usage: $PROG [N] [--memory MiB] [--no-persist]" ;;
	esac
done

P=${FOU_BT_PREFIX:-fbt}
N3=${FOU_BT_NET:-198.51.100}
BR=$P-br
WORK=$(mktemp -d)
IMAGE=${FOU_BT_IMAGE:-$("$HERE/../build-image.sh" | tail -n1)}

cleanup() {
	local i
	for ((i = 1; i <= COUNT; i++)); do
		"$VM" stop --state-dir "$WORK/b$i" --tap "$P-b$i" >/dev/null 2>&1 || true
	done
	"$NET" down --bridge "$BR" >/dev/null 2>&1 || true
	[[ -z ${FOU_BT_KEEP:-} ]] || cp -- "$WORK"/b*.console "$FOU_BT_KEEP/" 2>/dev/null || true
	rm -rf -- "$WORK"
}
trap cleanup EXIT

"$NET" up --bridge "$BR" --address "$N3.1/24" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key"
declare -a pids=()
for ((i = 1; i <= COUNT; i++)); do
	"$VM" start --name "b$i" --address "$N3.$((180 + i))/24" --bridge "$BR" --tap "$P-b$i" \
		--mac "52:54:00:00:01:$((80 + i))" --state-dir "$WORK/b$i" --image "$IMAGE" \
		--authorized-key "$(<"$WORK/key.pub")" "${EXTRA[@]}" >"$WORK/b$i.json" 2>"$WORK/b$i.err" &
	pids+=($!)
done
for ((i = 1; i <= COUNT; i++)); do
	wait "${pids[i - 1]}" || {
		cat "$WORK/b$i.err" >&2
		cp -- "$WORK/b$i/console.log" "$WORK/b$i.console" 2>/dev/null || true
		die "b$i did not start"
	}
done

json_field_of() { grep -o "\"$2\":[0-9.]*" "$1" | head -n1 | cut -d: -f2; } # FILE FIELD (a number)
# the kernel's timestamp of the first console line matching a pattern
mark() { # CONSOLE PATTERN
	sed -e 's/\r//g' "$1" | grep -m1 -e "$2" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'
}
for ((i = 1; i <= COUNT; i++)); do
	c=$WORK/b$i/console.log
	cp -- "$c" "$WORK/b$i.console"
	pid=$(json_field_of "$WORK/b$i.json" pid)
	printf '== b%s: bootSeconds %s, memory %s MiB, VmHWM %s\n' "$i" \
		"$(json_field_of "$WORK/b$i.json" bootSeconds)" "$(json_field_of "$WORK/b$i.json" memoryMiB)" \
		"$(awk '/^VmHWM/ { print $2 " " $3 }' "/proc/$pid/status")"
	printf '   console (kernel s): unpack start %s, unpack end %s, first process %s, systemd %s\n' \
		"$(mark "$c" 'Unpacking initramfs\|Trying to unpack rootfs')" "$(mark "$c" 'Freeing initrd memory')" \
		"$(mark "$c" 'Run .* as init process')" "$(mark "$c" 'systemd\[1\]: systemd [0-9]')"
	grep -a 'fou-vm-init' "$c" | sed -e 's/\r//g' -e 's/^/   /' | head -n 5 || true
	ssh -q -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		"root@$N3.$((180 + i))" 'systemd-analyze time; systemd-analyze critical-chain ssh.service; systemd-analyze blame | head -n 12; free -m' |
		sed 's/^/   /'
done
