# disk-image-boot.sh — how build-disk-image.sh makes its root bootable: GRUB's files and
# grub.cfg, the MBR disk with the ext4 partition, GRUB's boot code written with dd. Sourced by
# build-disk-image.sh; part of the image's cache key. The functions use its globals (ROOT, WORK,
# KVER, UUID, ROOT_MIB, PART_START_MIB).
# shellcheck shell=bash

# GRUB's core image and modules from the image's own grub-pc, and a grub.cfg that boots the
# installed kernel by UUID. grub-mkconfig cannot probe the root from a chroot of a directory;
# inside the VM update-grub (the kernel postinst hook) probes /dev/vda1 and rewrites the file.
write_grub_files() {
	local g="$ROOT/boot/grub"
	mkdir -p "$g/i386-pc"
	cp "$ROOT"/usr/lib/grub/i386-pc/*.mod "$ROOT"/usr/lib/grub/i386-pc/*.lst "$ROOT/usr/lib/grub/i386-pc/boot.img" "$g/i386-pc/"
	in_root grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img -p '(hd0,msdos1)/boot/grub' \
		biosdisk part_msdos ext2
	cat >"$g/grub.cfg" <<-EOF
		# Written when the image was built; update-grub replaces it inside the VM.
		serial --unit=0 --speed=115200
		terminal_input serial console
		terminal_output serial console
		set timeout=0
		insmod part_msdos
		insmod ext2
		search --no-floppy --fs-uuid --set=root $UUID
		menuentry 'Debian GNU/Linux, with Linux $KVER' {
		    linux /boot/vmlinuz-$KVER root=UUID=$UUID ro console=ttyS0,115200 net.ifnames=0
		    initrd /boot/initrd.img-$KVER
		}
	EOF
}

# The disk: an MBR with one bootable Linux partition at 1 MiB, the ext4 file system made from
# the root directory (mkfs.ext4 -d: no mount, no partition device) copied in at that offset, and
# GRUB in the MBR and the gap before the partition (write_boot_code).
assemble_disk() {
	local fs="$WORK/root.ext4" disk="$WORK/disk.raw"
	log "mkfs.ext4 -d (${ROOT_MIB} MiB)"
	truncate -s "${ROOT_MIB}M" "$fs"
	mkfs.ext4 -q -F -L fou-root -U "$UUID" -d "$ROOT" "$fs" >&2
	truncate -s "$((PART_START_MIB + ROOT_MIB))M" "$disk"
	printf 'label: dos\nstart=%s, size=%s, type=83, bootable\n' \
		"$((PART_START_MIB * 2048))" "$((ROOT_MIB * 2048))" | sfdisk -q "$disk" >&2
	dd if="$fs" of="$disk" bs=1M seek="$PART_START_MIB" conv=notrunc,sparse status=none
	rm -f "$fs"
	write_boot_code "$ROOT/boot/grub/i386-pc" "$disk"
}

# What grub-bios-setup does for a BIOS disk, without its probing (it looks for the device of
# the GRUB directory, which here is this machine's own disk): boot.img into the MBR's code area
# (the partition table stays), with its boot-drive check replaced by two NOPs as for any hard
# disk, and core.img embedded from sector 1. grub-mkimage already points core.img's first
# sector at sector 2 with the right length; no Reed-Solomon codes are added (redundancy 0).
write_boot_code() { # GRUBDIR DISK
	local dir=$1 disk=$2 size
	size=$(stat -c %s "$dir/core.img")
	((size + 512 <= PART_START_MIB * 1048576)) || die "core.img ($size bytes) does not fit before the partition"
	local want len=$(((size + 511) / 512 - 1))
	want=$(od -An -tx1 -j 500 -N 12 "$dir/core.img" | tr -d ' \n')
	[[ $want == "0200000000000000$(printf '%02x%02x' $((len & 255)) $((len >> 8)))2008" ]] ||
		die "core.img's blocklist is not the embedding one: $want"
	dd if="$dir/boot.img" of="$disk" bs=1 count=440 conv=notrunc status=none
	printf '\x90\x90' | dd of="$disk" bs=1 seek=$((0x66)) conv=notrunc status=none
	dd if="$dir/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
}
