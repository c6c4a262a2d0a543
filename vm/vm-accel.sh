# vm-accel.sh — which accelerator qemu uses: KVM if a kernel really boots under it, else TCG.
# Sourced by vm.sh (after vm/lib.sh).
# shellcheck shell=bash

CACHE_ROOT=${FOU_CACHE:-${HOME:-/root}/.cache/fou-tunnel}

# KVM is usable only if a kernel really boots under it (some hosts expose a /dev/kvm that cannot
# run an ordinary guest kernel, e.g. PVM): boot the image's kernel without a root file system and
# expect its "Kernel panic" (no root) within a few seconds. Cached per host boot and kernel.
choose_accel() { # VMLINUZ KERNEL_RELEASE
	local vmlinuz=$1 krel=$2 forced=${FOU_ACCEL:-}
	case $forced in
	kvm | tcg)
		printf '%s\n' "$forced"
		return 0
		;;
	'') ;;
	*) die "FOU_ACCEL must be kvm or tcg, not '$forced'" ;;
	esac
	if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
		printf 'tcg\n'
		return 0
	fi
	local boot_id cache result
	boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
	mkdir -p -- "$CACHE_ROOT"
	cache=$CACHE_ROOT/accel-probe
	exec 7>>"$cache.lock"
	flock 7
	if [[ -s $cache ]] && read -r b k result <"$cache" && [[ $b == "$boot_id" && $k == "$krel" ]] &&
		[[ $result == kvm || $result == tcg ]]; then
		exec 7>&-
		printf '%s\n' "$result"
		return 0
	fi
	log "probing whether KVM can boot $krel (once per host boot)"
	local tmp
	tmp=$(mktemp -d)
	result=tcg
	timeout 15 qemu-system-x86_64 -machine pc -accel kvm -cpu host -m 256 -smp 1 -nodefaults \
		-display none -no-reboot -serial "file:$tmp/console" -kernel "$vmlinuz" \
		-append "console=ttyS0 panic=-1" >"$tmp/err" 2>&1 || true
	if grep -q 'Kernel panic' "$tmp/console" 2>/dev/null; then
		result=kvm
	else
		log "KVM cannot boot this kernel here ($(tail -n1 "$tmp/err" 2>/dev/null || true)); using TCG"
	fi
	rm -rf -- "$tmp"
	printf '%s %s %s\n' "$boot_id" "$krel" "$result" >"$cache.new"
	mv -f -- "$cache.new" "$cache"
	exec 7>&-
	printf '%s\n' "$result"
}
