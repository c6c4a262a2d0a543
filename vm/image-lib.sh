# image-lib.sh — the parts of build-image.sh that shape the VM's boot: which units run, the
# read-only root disk image and the small initramfs that mounts it. Sourced by build-image.sh
# (after vm/lib.sh); part of the image hash.
# shellcheck shell=bash

# Units and generators a test VM does not need at boot. Measured under TCG: each costs from
# 0.1 s (a generator) to ~1 s (systemd-sysusers); cfg80211, which networkd's nl80211 lookup
# pulls in, costs ~2 s (the image leaves its modules out: copy_modules in image-root.sh).
MASKED_UNITS=(
	apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
	e2scrub_all.timer e2scrub_all.service e2scrub_reap.service fstrim.timer fstrim.service
	getty@tty1.service serial-getty@ttyS0.service getty-static.service
	systemd-networkd-wait-online.service systemd-remount-fs.service systemd-timesyncd.service
	dpkg-db-backup.timer dpkg-db-backup.service systemd-random-seed.service
	proc-sys-fs-binfmt_misc.automount dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount
	sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount
	modprobe@configfs.service modprobe@dm_mod.service modprobe@efi_pstore.service
	modprobe@fuse.service modprobe@loop.service modprobe@drm.service
	systemd-sysusers.service kmod-static-nodes.service systemd-pstore.service
	systemd-pcrphase.service systemd-pcrphase-sysinit.service systemd-update-utmp.service
	systemd-update-utmp-runlevel.service systemd-binfmt.service systemd-firstboot.service
	systemd-machine-id-commit.service systemd-repart.service
	systemd-udevd.service systemd-udev-trigger.service systemd-udevd-control.socket
	systemd-udevd-kernel.socket systemd-udev-settle.service systemd-hwdb-update.service
)
# Generators that find nothing to do here (no LUKS, verity, GPT root, SysV scripts, ...); the
# getty generator would start a serial login on ttyS0 that nobody uses.
MASKED_GENERATORS=(
	systemd-cryptsetup-generator systemd-gpt-auto-generator systemd-hibernate-resume-generator
	systemd-integritysetup-generator systemd-veritysetup-generator systemd-sysv-generator
	systemd-rc-local-generator systemd-system-update-generator systemd-run-generator
	systemd-getty-generator
)

configure_units() { # ROOT
	local root=$1 unit
	# No systemd-networkd: the initramfs has configured eth0 (fou_addr=) before systemd starts;
	# networkd took ~3.5 s of the single CPU and sat between the boot and ssh.service.
	for unit in "${MASKED_UNITS[@]}" systemd-networkd.service systemd-networkd.socket \
		systemd-network-generator.service; do
		ln -sfn /dev/null "$root/etc/systemd/system/$unit"
	done
	mkdir -p -- "$root/etc/systemd/system-generators"
	for unit in "${MASKED_GENERATORS[@]}"; do
		ln -sfn /dev/null "$root/etc/systemd/system-generators/$unit"
	done
	mkdir -p -- "$root/etc/systemd/journald.conf.d" "$root/etc/systemd/system/ssh.service.d"
	printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' >"$root/etc/systemd/journald.conf.d/fou-tunnel.conf"
	# sshd -t before sshd: one more start of sshd (~0.3 s under TCG) to check a config we wrote.
	# -r: a connection is served by a fork of the listener instead of a fresh exec of sshd, which
	# re-loads sshd and its libraries (~0.4 s of every login under TCG). What that costs is the
	# per-connection re-randomised address space, on a test VM reachable only from its bridge.
	# shellcheck disable=SC2016 # $SSHD_OPTS is for systemd to expand
	printf '[Service]\nExecStartPre=\nExecStart=\nExecStart=/usr/sbin/sshd -D -r $SSHD_OPTS\n' \
		>"$root/etc/systemd/system/ssh.service.d/fou-tunnel.conf"
}

# The root as an ext4 image without a journal, for qemu -drive readonly=on: every VM shares it,
# and reads it through the page cache instead of holding a copy of it in its RAM.
write_root_image() { # ROOT FILE
	local root=$1 img=$2 mib inodes
	mib=$(du -s --apparent-size -B1M -x -- "$root" | cut -f1)
	mib=$((mib + mib / 5 + 32))
	inodes=$(find "$root" -xdev | wc -l)
	inodes=$((inodes + inodes / 5 + 1024))
	truncate -s "${mib}M" -- "$img" || die "cannot create $img"
	mkfs.ext4 -q -F -L fou-root -m 0 -b 4096 -N "$inodes" -O ^has_journal,^resize_inode \
		-E root_owner=0:0,lazy_itable_init=0 -d "$root" "$img" >&2 ||
		die "mkfs.ext4 -d (the root image) failed"
	e2fsck -fn "$img" >/dev/null 2>&1 || die "e2fsck finds errors in $img"
}

# The initramfs: a static busybox, fou-vm-initrd as /init and the modules it loads (with all
# their dependencies, pvpanic_pci's first), as one uncompressed newc cpio (a few MB).
# MODTREE is a depmod'ed tree (-d for modprobe) holding lib/modules/KRELEASE.
write_initramfs() { # MODTREE KRELEASE INIT_SCRIPT FILE MODULE...
	local tree=$1 krel=$2 init=$3 out=$4 dir mod kind path _ app req
	shift 4
	dir=$(dirname -- "$out")/initramfs.d
	rm -rf -- "$dir"
	mkdir -p -- "$dir"/{bin,dev,proc,sys,lib/modules,media,newroot}
	install -m 0755 -- "$(busybox_path)" "$dir/bin/busybox"
	for app in sh mount umount insmod mkdir cp find sleep ip switch_root; do
		ln -s busybox "$dir/bin/$app"
	done
	install -m 0755 -- "$init" "$dir/init"
	mknod -m 0600 "$dir/dev/console" c 5 1
	: >"$dir/lib/modules/load-order"
	for mod in "$@"; do
		modprobe -d "$tree" -S "$krel" --show-depends "$mod" >"$dir/deps" || die "modprobe --show-depends $mod failed"
		while read -r kind path _; do
			[[ $kind == insmod ]] || continue # "builtin NAME"
			[[ -f $path ]] || die "unexpected module path $path"
			grep -q "^${path##*/} " "$dir/lib/modules/load-order" && continue
			cp -- "$path" "$dir/lib/modules/"
			# required: MODULE itself; a dependency that fails makes it fail; a softdep may
			# not fit this CPU (crc32c-intel needs SSE4.2; crc32c_generic stands in)
			req=optional
			# shellcheck disable=SC2053 # a pattern: module files spell _ as _ or -
			[[ ${path##*/} == ${mod//_/[_-]}.ko ]] && req=required
			printf '%s %s\n' "${path##*/}" "$req" >>"$dir/lib/modules/load-order"
		done <"$dir/deps"
		grep -q "^${mod//_/[_-]}\.ko required$" "$dir/lib/modules/load-order" || die "no module file for $mod"
	done
	rm -f -- "$dir/deps"
	(cd "$dir" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out" ||
		die "cpio (the initramfs) failed"
	rm -rf -- "$dir"
}

# The kernel as an uncompressed ELF: qemu boots it through its PVH entry point (CONFIG_PVH),
# which skips the bzImage's real-mode setup and the decompression of ~65 MB of xz under TCG
# (3.3 s of the boot before the kernel's first message). Nothing is written if the kernel is
# not an xz bzImage with PVH; vm.sh then boots vmlinuz.
extract_pvh_kernel() { # VMLINUZ CONFIG OUT
	local off
	grep -qx 'CONFIG_PVH=y' "$2" 2>/dev/null || return 0
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -n1 | cut -d: -f1) || return 0
	[[ -n $off ]] || return 0
	tail -c +"$((off + 1))" -- "$1" | xz -dc --single-stream >"$3.tmp" 2>/dev/null || true
	if [[ $(head -c 4 -- "$3.tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
		mv -f -- "$3.tmp" "$3"
	else
		log "warning: no ELF kernel in $1; the VMs boot the compressed one"
		rm -f -- "$3.tmp"
	fi
}

# busybox-static's binary (a dynamic busybox would need its libraries in the initramfs).
busybox_path() {
	local p
	p=$(dpkg -L busybox-static 2>/dev/null | grep -m1 -x '/\(usr/\)\?s\?bin/busybox') || die "busybox-static is not installed"
	[[ -x $p ]] || die "$p is missing"
	printf '%s\n' "$p"
}
