#!/usr/bin/env bash
# smoke.sh — end-to-end proof of the disk-image VM: a host with the 6.1 kernel and no fou
# upgrades to bookworm's 6.12 kernel with apt from this machine's signed repository, reboots
# through GRUB into it, and then has fou. Run as root under the VM lock:
#   flock /tmp/fou-vm.lock vm/disk/smoke.sh
# Everything it makes (bridge, server, tap, VM, temp dir) is removed on exit, even on failure.
set -euo pipefail

PROG=smoke.sh
# shellcheck source=vm/disk/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"

PREFIX=${FOU_DISK_SMOKE_PREFIX:-fkd}
BRIDGE="$PREFIX-br"
TAP="$PREFIX-t1"
HOST_IP=198.51.100.1
VM_IP=198.51.100.171
MAC=52:54:00:fd:01:71
PORT=${FOU_DISK_SMOKE_PORT:-8931}
TIMEOUT=${FOU_DISK_SMOKE_TIMEOUT:-300}
SOURCE_LINE="deb [signed-by=/etc/apt/keyrings/fou-kernel.gpg] http://$HOST_IP:$PORT/ bookworm-fou main"

WORK=''
BRIDGE_UP=0

teardown() {
	local rc=$?
	set +e
	if [[ -n $WORK ]]; then
		"$DISK_DIR/disk-vm.sh" stop --state-dir "$WORK/vm"
		"$DISK_DIR/serve-repo.sh" stop --state "$WORK/server"
	fi
	((BRIDGE_UP)) && "$DISK_DIR/../net.sh" down --bridge "$BRIDGE"
	[[ -n $WORK ]] && rm -rf -- "$WORK"
	local left=''
	link_exists "$TAP" && left+=" tap $TAP"
	link_exists "$BRIDGE" && left+=" bridge $BRIDGE"
	[[ -z $left ]] || log "error: left behind:$left"
	if ((rc == 0)) && [[ -z $left ]]; then log "PASS"; else log "FAIL (exit $rc)"; fi
	[[ -z $left ]] || rc=1
	exit "$rc"
}

vm_ssh() { # USER CMD...
	local user=$1
	shift
	ssh -i "$WORK/id" -o UserKnownHostsFile="$WORK/vm/known_hosts" -o StrictHostKeyChecking=yes \
		-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR "$user@$VM_IP" "$@"
}
as_admin() { vm_ssh admin "$@"; }

expect() { # WHAT GOT WANT(glob)
	# shellcheck disable=SC2053 # WANT is a pattern on purpose
	[[ $2 == $3 ]] || die "$1: got '$2', want '$3'"
	log "ok: $1: $2"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

setup() {
	need_root
	[[ ! -e /sys/class/net/$BRIDGE ]] || die "$BRIDGE exists already: another run, or left behind (vm/net.sh down --bridge $BRIDGE)"
	IMAGE=$("$DISK_DIR/build-disk-image.sh" | tail -1)
	REPO=$("$DISK_DIR/kernel-repo.sh" --image "$IMAGE" | tail -1)
	WORK=$(mktemp -d /tmp/fou-disk-smoke.XXXXXX)
	BRIDGE_UP=1
	"$DISK_DIR/../net.sh" up --bridge "$BRIDGE" --address "$HOST_IP/24" >&2
	"$DISK_DIR/serve-repo.sh" start --dir "$REPO" --address "$HOST_IP" --port "$PORT" --state "$WORK/server" >&2
	ssh-keygen -q -t ed25519 -N '' -C fou-disk-smoke -f "$WORK/id"
}

start_vm() {
	local json
	json=$("$DISK_DIR/disk-vm.sh" start --name fkd1 --address "$VM_IP/24" --bridge "$BRIDGE" --tap "$TAP" \
		--mac "$MAC" --state-dir "$WORK/vm" --authorized-key "$(cat "$WORK/id.pub")" --image "$IMAGE" \
		--timeout "$TIMEOUT")
	printf '%s\n' "$json"
	BOOT_S=$(jq -r .bootSeconds <<<"$json")
	QEMU_PID=$(jq -r .pid <<<"$json")
}

check_old_host() {
	expect "uname -r" "$(as_admin uname -r)" '6.1.*'
	expect "modinfo fou" "$(as_admin sudo modinfo fou 2>&1 || true)" 'modinfo: ERROR: Module fou not found.'
	expect "root login" "$(vm_ssh root id -un)" root
	expect "admin sudo" "$(as_admin sudo -n id -un)" root
	expect "admin shell" "$(as_admin 'getent passwd admin | cut -d: -f7')" /bin/bash
	expect "/bin/sh" "$(as_admin readlink /bin/sh)" dash
	expect "hostname" "$(as_admin hostname)" fkd1
}

install_kernel() {
	as_admin 'sudo install -d -m 0755 /etc/apt/keyrings && sudo tee /etc/apt/keyrings/fou-kernel.gpg >/dev/null' <"$REPO/key.gpg"
	printf '%s\n' "$SOURCE_LINE" | as_admin 'sudo tee /etc/apt/sources.list.d/fou-kernel.list >/dev/null'
	as_admin 'sudo apt-get update' >&2
	local t0
	t0=$(now)
	as_admin 'sudo DEBIAN_FRONTEND=noninteractive apt-get install -y linux-image-6.12-amd64' >"$WORK/install.log" 2>&1 ||
		{
			tail -30 "$WORK/install.log" >&2
			die "apt-get install failed"
		}
	INSTALL_S=$(since "$t0")
	grep -E 'Generating grub|Found linux image|update-initramfs' "$WORK/install.log" >&2 || true
	local first
	first=$(as_admin "sudo awk '\$1 == \"linux\" { print; exit }' /boot/grub/grub.cfg")
	expect "grub default entry" "$first" '*vmlinuz-6.12.*root=UUID=*'
}

reboot_vm() {
	local old new t0
	old=$(as_admin cat /proc/sys/kernel/random/boot_id)
	t0=$(now)
	as_admin 'sudo systemd-run --quiet --on-active=2 systemctl reboot'
	local deadline=$((SECONDS + TIMEOUT))
	while ((SECONDS < deadline)); do
		new=$(as_admin cat /proc/sys/kernel/random/boot_id 2>/dev/null) || new=''
		[[ -n $new && $new != "$old" ]] && break
		sleep 2
	done
	[[ -n $new && $new != "$old" ]] || die "no SSH from a new boot after ${TIMEOUT} s"
	REBOOT_S=$(since "$t0")
	expect "qemu pid after the reboot" "$("$DISK_DIR/disk-vm.sh" status --state-dir "$WORK/vm" | jq -r .pid)" "$QEMU_PID"
}

check_new_host() {
	expect "uname -r" "$(as_admin uname -r)" '6.12.*'
	expect "modinfo --field=depends fou" "$(as_admin sudo modinfo --field=depends fou)" '*ip_tunnel*'
	as_admin 'sudo modprobe fou && sudo ip fou add port 5555 ipproto 4'
	expect "ip fou show" "$(as_admin ip fou show)" '*port 5555 ipproto 4*'
	expect "address after the reboot" "$(as_admin ip -4 -o addr show dev eth0 | awk '{ print $4 }')" "$VM_IP/24"
	expect "host key after the reboot" "$(ssh-keyscan -t ed25519 "$VM_IP" 2>/dev/null | cut -d' ' -f2-3)" "$(cut -d' ' -f2-3 "$WORK/vm/known_hosts")"
}

main() {
	trap teardown EXIT
	setup
	start_vm
	check_old_host
	install_kernel
	reboot_vm
	check_new_host
	local rss
	rss=$(awk '/VmHWM/ { print $2 / 1024 " MB" }' "/proc/$QEMU_PID/status" 2>/dev/null || echo '?')
	printf 'boot to SSH: %s s; install of linux-image-6.12-amd64: %s s; reboot to SSH: %s s; qemu peak RSS: %s\n' \
		"$BOOT_S" "$INSTALL_S" "$REBOOT_S" "$rss"
}

main "$@"
