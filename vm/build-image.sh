#!/usr/bin/env bash
# build-image.sh — build (once) and cache the "new-kernel image" the test VMs boot:
#   vmlinuz       Debian's kernel (the one linux-image-amd64 depends on)
#   root.img      a debootstrap minbase root (sshd, systemd-networkd, iproute2, tcpdump, ...)
#                 with a subset of that kernel's modules, as an ext4 image without a journal
#                 that every VM attaches read-only
#   initrd.cpio   a small initramfs: static busybox, the modules for the disks, and
#                 fou-vm-initrd as /init, which mounts the root (see that file)
#   kernel-release, fou-modules, rdinit, build-info, config
# The image directory is printed as the last line of stdout; progress goes to stderr.
set -euo pipefail

PROG=build-image.sh
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname -- "$SCRIPT_PATH")
INIT_PATH=$HERE/fou-vm-initrd # the initramfs's /init
# the sourced parts: their text is part of the image hash, like this script's
PART_PATHS=("$HERE/image-apt.sh" "$HERE/image-root.sh" "$HERE/image-lib.sh")

usage() {
	cat <<EOF
Usage: $PROG [--cache-dir DIR] [--prune] [--help]

Builds the new-kernel image for the fou-tunnel test VMs, or reuses the cached one, and prints
its directory as the last line of stdout.

  --cache-dir DIR  cache root (default: \${FOU_CACHE:-\$HOME/.cache/fou-tunnel});
                   the image goes to DIR/image/<key>/, where <key> changes with the kernel
                   package version, with this script, image-apt.sh, image-root.sh,
                   image-lib.sh, fou-vm-initrd and the busybox-static version
  --prune          after a successful build/lookup, delete other cached images
  --help           this text

Environment: FOU_CACHE (cache root), FOU_MIRROR (Debian mirror for debootstrap; default: the one
apt uses for the host's release), FOU_SUITE (default: the host's VERSION_CODENAME).
Needs root (apt-get, debootstrap).
EOF
}

# shellcheck source=vm/lib.sh
. "$HERE/lib.sh"
# shellcheck source=vm/image-apt.sh
. "$HERE/image-apt.sh"
# shellcheck source=vm/image-root.sh
. "$HERE/image-root.sh"
# shellcheck source=vm/image-lib.sh
. "$HERE/image-lib.sh"

CACHE_ROOT=${FOU_CACHE:-${HOME:-/root}/.cache/fou-tunnel}
PRUNE=0

parse_args() {
	while (($#)); do
		case $1 in
		--cache-dir)
			(($# >= 2)) || die "--cache-dir needs a value"
			CACHE_ROOT=$2
			shift 2
			;;
		--prune)
			PRUNE=1
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*)
			usage >&2
			die "unknown argument: $1"
			;;
		esac
	done
}

# Sets SCRIPT_HASH, KEY (<kernel-release>-<hash>) and IMAGE_DIR: the hash covers the kernel
# package and version, the suite, this script, its parts, fou-vm-initrd and the busybox version.
image_key() {
	local f
	for f in "$INIT_PATH" "${PART_PATHS[@]}"; do
		[[ -s $f ]] || die "missing $f"
	done
	BUSYBOX_VERSION=$(dpkg-query -W -f='${Version}' busybox-static)
	SCRIPT_HASH=$({ cat -- "$SCRIPT_PATH" "${PART_PATHS[@]}" "$INIT_PATH" &&
		printf 'busybox-static=%s\n' "$BUSYBOX_VERSION"; } | sha256sum | cut -c1-64)
	local key_hash
	key_hash=$(printf '%s\n' "$KPKG=$KVERSION" "$SUITE" "$SCRIPT_HASH" | sha256sum | cut -c1-12)
	KEY="$KRELEASE-$key_hash"
	IMAGE_DIR="$IMAGE_ROOT/$KEY"
}

prune_others() {
	((PRUNE)) || return 0
	local d
	for d in "$IMAGE_ROOT"/*/; do
		d=${d%/}
		[[ -d $d && $d != "$IMAGE_DIR" && -f $d/kernel-release ]] || continue
		log "pruning old image $d"
		rm -rf --one-file-system -- "$d"
	done
}

image_complete() {
	[[ -s $1/vmlinuz && -s $1/root.img && -s $1/initrd.cpio && -s $1/kernel-release ]]
}

# Unmount anything below $1 (a crashed debootstrap may leave proc/sys mounted), then delete it.
remove_tree() {
	local dir=$1 mnt
	[[ -e $dir ]] || return 0
	dir=$(readlink -f -- "$dir")
	while read -r mnt; do
		umount -l -- "$mnt" 2>/dev/null || log "warning: cannot unmount $mnt"
	done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
	rm -rf --one-file-system -- "$dir"
}

# The image from the root and the kernel: root.img, initrd.cpio, the kernels, the small files.
write_image() {
	log "writing root.img and initrd.cpio"
	write_root_image "$ROOT" "$OUT/root.img"
	write_initramfs "$TMP/kernel" "$KRELEASE" "$INIT_PATH" "$OUT/initrd.cpio" "${INIT_MODULES[@]}"
	cp -- "$TMP/kernel/boot/vmlinuz-$KRELEASE" "$OUT/vmlinuz"
	cp -- "$TMP/kernel/boot/config-$KRELEASE" "$OUT/config" 2>/dev/null || true
	extract_pvh_kernel "$OUT/vmlinuz" "$OUT/config" "$OUT/vmlinux"
	printf '%s\n' "$KRELEASE" >"$OUT/kernel-release"
	printf '/init\n' >"$OUT/rdinit" # vm.sh boots with rdinit=<this>
	{
		printf 'package=%s\nversion=%s\nsuite=%s\nmirror=%s\n' "$KPKG" "$KVERSION" "$SUITE" "$MIRROR"
		printf 'script_sha256=%s\nbuilt=%s\nbuild_seconds=%s\n' "$SCRIPT_HASH" "$(date -u +%FT%TZ)" "$((SECONDS - START))"
		printf 'root_img_bytes=%s\ninitrd_cpio_bytes=%s\nbusybox_static=%s\n' "$(du -B1 -- "$OUT/root.img" | cut -f1)" \
			"$(stat -c %s "$OUT/initrd.cpio")" "$BUSYBOX_VERSION"
	} >"$OUT/build-info"
}

# Builds the image in a temp dir under the lock (fd 9) and renames it into IMAGE_DIR.
build() {
	local stale
	# Leftovers of crashed builds (we hold the lock, so nobody else is building).
	for stale in "$IMAGE_ROOT"/.tmp.*; do
		[[ -e $stale ]] || continue
		log "removing leftover $stale"
		remove_tree "$stale"
	done
	TMP=$(mktemp -d "$IMAGE_ROOT/.tmp.$KEY.XXXXXX")
	trap 'remove_tree "$TMP"' EXIT
	OUT=$TMP/out
	ROOT=$TMP/root
	mkdir -p -- "$OUT" "$TMP/deb" "$TMP/kernel"
	START=$SECONDS
	resolve_mirror
	log "building image $KEY: $KPKG $KVERSION, $SUITE from $MIRROR"
	unpack_kernel
	debootstrap_root
	configure_root
	copy_modules
	write_image
	mv -T -- "$OUT" "$IMAGE_DIR" || die "cannot move the image into $IMAGE_DIR"
	log "built $IMAGE_DIR in $((SECONDS - START)) s ($(du -sh "$IMAGE_DIR/root.img" | cut -f1) root.img, $(du -sh "$IMAGE_DIR/initrd.cpio" | cut -f1) initrd.cpio)"
}

main() {
	parse_args "$@"
	[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, debootstrap, device nodes)"
	mkdir -p -- "$CACHE_ROOT/image"
	IMAGE_ROOT=$(readlink -f -- "$CACHE_ROOT/image")
	ensure_tools
	resolve_kernel_package
	resolve_suite
	image_key

	# Fast path: the directory only ever appears complete (atomic rename).
	if image_complete "$IMAGE_DIR"; then
		log "cached: $IMAGE_DIR"
		if ((PRUNE)); then
			exec 9>"$IMAGE_ROOT/.lock"
			flock 9
			prune_others
		fi
		printf '%s\n' "$IMAGE_DIR"
		exit 0
	fi

	exec 9>"$IMAGE_ROOT/.lock"
	if ! flock -n 9; then
		log "another build holds $IMAGE_ROOT/.lock; waiting"
		flock 9
	fi
	if image_complete "$IMAGE_DIR"; then
		log "built by another process: $IMAGE_DIR"
	else
		build
	fi
	prune_others
	printf '%s\n' "$IMAGE_DIR"
}

main "$@"
