#!/usr/bin/env bash
# build-disk-image.sh — a raw disk image that boots like an ordinary Debian host: MBR, one ext4
# partition, GRUB in the MBR, Debian bookworm's 6.1 kernel with fou.ko/fou6.ko deleted (the
# "kernel too old" host of issue #18). Built once per version of this script and its guest
# files, cached under $FOU_CACHE/disk/.
set -euo pipefail

PROG=build-disk-image.sh
# shellcheck source=vm/disk/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"
# shellcheck source=vm/disk/disk-image-root.sh
. "$DISK_DIR/disk-image-root.sh"
# shellcheck source=vm/disk/disk-image-boot.sh
. "$DISK_DIR/disk-image-boot.sh"

usage() {
	cat <<EOF
Usage: $PROG [--print-dir] [--prune]

Builds (or finds in the cache) the disk image and prints its directory as the last stdout
line: DIR/disk.raw (raw, MBR + ext4 root, GRUB in the MBR), DIR/root-uuid, DIR/kernel-release,
DIR/dpkg-status (the image's /var/lib/dpkg/status), DIR/build-info.
  --print-dir  print the directory without building; exit 1 if the image is not built yet
  --prune      delete cached images of other versions of this script
Env: FOU_CACHE, FOU_MIRROR (default: the mirror apt uses here). Needs root.
EOF
}

ROOT_MIB=3072 # the ext4 root: room for a second kernel (6.12: ~550 MB with its initrd and .deb)
PART_START_MIB=1

PACKAGES=(
	linux-image-amd64 grub-pc initramfs-tools openssh-server sudo iproute2 kmod iputils-ping
	tcpdump nftables systemd-sysv udev procps
)
# Units a test host does not need; each costs boot time under TCG or runs at a random moment.
MASKED=(
	apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
	e2scrub_all.timer e2scrub_all.service e2scrub_reap.service fstrim.timer fstrim.service
	getty@tty1.service getty-static.service serial-getty@ttyS0.service
	systemd-networkd-wait-online.service
)

# The cache key: this script, its sourced parts and the guest files it copies, the suite and
# the package list.
image_key() {
	{
		cat "$DISK_DIR/build-disk-image.sh" "$DISK_DIR/disk-image-root.sh" "$DISK_DIR/disk-image-boot.sh" \
			"$DISK_DIR/guest/fou-seed" "$DISK_DIR/guest/fou-seed.service"
		printf '%s\n' "$DISK_SUITE" "${PACKAGES[*]}"
	} | sha256sum | cut -c1-16
}

# Unmounts whatever is mounted below DIR (deepest first): debootstrap's and our own mounts.
umount_below() { # DIR
	local m
	while read -r m; do
		umount -l -- "$m" 2>/dev/null || true
	done < <(awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
}

cleanup() {
	if [[ -n ${ROOT:-} ]]; then umount_below "$ROOT"; fi
	if [[ -n ${WORK:-} && -d $WORK && ${KEEP_WORK:-0} != 1 ]]; then rm -rf -- "$WORK"; fi
}

build() { # DEST
	local dest=$1 mirror start=$SECONDS
	mirror=$(apt_mirror)
	ensure_tools debootstrap:debootstrap sfdisk:fdisk mkfs.ext4:e2fsprogs
	WORK=$(mktemp -d "$DISK_CACHE/.build.XXXXXX")
	ROOT="$WORK/root"
	trap cleanup EXIT
	UUID=$(cat /proc/sys/kernel/random/uuid)
	do_debootstrap "$mirror"
	mount -t proc proc "$ROOT/proc"
	divert_grub
	install_packages
	KVER=$(basename "$(find "$ROOT/lib/modules" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -1)")
	remove_fou
	configure_users
	configure_sshd
	undivert_grub
	configure_system
	write_grub_files
	cp "$ROOT/var/lib/dpkg/status" "$WORK/dpkg-status"
	umount_below "$ROOT"
	assemble_disk
	printf '%s\n' "$UUID" >"$WORK/root-uuid"
	printf '%s\n' "$KVER" >"$WORK/kernel-release"
	printf 'suite=%s\nmirror=%s\nkernel=%s\nbuilt=%s\nseconds=%s\n' "$DISK_SUITE" "$mirror" "$KVER" \
		"$(date -u +%FT%TZ)" "$((SECONDS - start))" >"$WORK/build-info"
	rm -rf -- "$ROOT"
	mv -- "$WORK" "$dest"
	WORK=''
	log "built $dest in $((SECONDS - start)) s"
}

main() {
	local print=0 prune=0
	parse_options --print-dir:print=1 --prune:prune=1 -h -- "$@"
	local dest
	dest="$DISK_CACHE/image-$(image_key)"
	if ((print)); then
		[[ -s $dest/disk.raw ]] || die "no image at $dest (run $PROG)"
		printf '%s\n' "$dest"
		return
	fi
	need_root
	mkdir -p "$DISK_CACHE"
	exec 9>"$DISK_CACHE/.build-image.lock"
	flock 9
	# a crashed build's leftovers (and anything mounted in them)
	local old
	for old in "$DISK_CACHE"/.build.*; do
		[[ -d $old ]] || continue
		umount_below "$old"
		rm -rf -- "$old"
	done
	if [[ ! -s $dest/disk.raw ]]; then build "$dest"; fi
	if ((prune)); then
		for old in "$DISK_CACHE"/image-*; do
			[[ $old == "$dest" ]] || rm -rf -- "$old"
		done
	fi
	printf '%s\n' "$dest"
}

main "$@"
