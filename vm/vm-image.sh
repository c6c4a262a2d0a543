# vm-image.sh — how vm.sh boots an image: the two layouts build scripts make, the per-VM initrd,
# the root disk. Sourced by vm.sh (after vm/lib.sh).
# shellcheck shell=bash

ROOT_SERIAL=fou-root # the root disk's virtio serial, which the initramfs looks for

# "disk": root.img (shared, read-only) + the small initrd.cpio (build-image.sh);
# "cpio": the whole root as base.cpio, unpacked into RAM (build-cloud-image.sh).
image_kind() { # IMAGE
	if [[ -s $1/root.img && -s $1/initrd.cpio ]]; then
		printf 'disk\n'
	elif [[ -s $1/base.cpio ]]; then
		printf 'cpio\n'
	else
		return 1
	fi
}

# The least guest RAM (MiB) an image boots with: an in-RAM root needs room for its cpio and
# for the files unpacked from it (176 MB of root: -m 512 fails to unpack); the disk root needs
# the kernel, systemd and a page cache.
image_min_memory() { # KIND
	case $1 in
	disk) printf '256\n' ;;
	cpio) printf '600\n' ;;
	esac
}

# Writes OUT: the image's initramfs with the per-VM files of directory OV appended.
#  disk: OV's tree below /vm (directories too: it is a tree of its own, which the initramfs
#        copies file by file into the root);
#  cpio: OV's files only, at their places in the root (a directory entry would replace a
#        symlink of the base, bookworm's /lib -> usr/lib, and break the root).
# OUT holds the host's private key: readable by root only.
make_vm_initrd() { # IMAGE KIND OV OUT
	local image=$1 kind=$2 ov=$3 out=$4 base
	if [[ $kind == disk ]]; then
		base=$image/initrd.cpio
		mkdir -p -- "$ov.d" && mv -T -- "$ov" "$ov.d/vm" || return 1
		(umask 077 && cd "$ov.d" && find vm | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.vm" || return 1
		mv -T -- "$ov.d/vm" "$ov" && rmdir -- "$ov.d"
	else
		base=$image/base.cpio
		(umask 077 && cd "$ov" && find . -mindepth 1 ! -type d | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.vm" || return 1
	fi
	(umask 077 && cat -- "$base" "$out.vm" >"$out") || return 1
	rm -f -- "$out.vm"
}

# qemu arguments for the image's root disk (nothing for an in-RAM root), and the kernel
# arguments that name it. All VMs of the image open the same file, read-only.
root_disk_qemu_args() { # IMAGE KIND -> one argument per line
	[[ $2 == disk ]] || return 0
	printf '%s\n' -drive "file=$1/root.img,if=none,id=root,format=raw,readonly=on" \
		-device "virtio-blk-pci,drive=root,serial=$ROOT_SERIAL"
}
root_disk_kernel_args() { # KIND IP/PREFIX
	[[ $1 == disk ]] || return 0
	printf ' fou_root=%s fou_addr=%s' "$ROOT_SERIAL" "$2"
}

# The kernel qemu boots: the image's uncompressed PVH vmlinux if it has one (build-image.sh),
# which starts ~3 s sooner under TCG than the compressed vmlinuz.
boot_kernel() { # IMAGE
	if [[ -s $1/vmlinux ]]; then printf '%s\n' "$1/vmlinux"; else printf '%s\n' "$1/vmlinuz"; fi
}
