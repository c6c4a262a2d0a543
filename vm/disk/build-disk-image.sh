#!/usr/bin/env bash
# build-disk-image.sh — a raw disk image that boots like an ordinary Debian host: MBR, one ext4
# partition, GRUB in the MBR, Debian bookworm's 6.1 kernel with fou.ko/fou6.ko deleted (the
# "kernel too old" host of issue #18). Built once per version of this script and its guest
# files, cached under $FOU_CACHE/disk/.
set -euo pipefail

PROG=build-disk-image.sh
# shellcheck source=vm/disk/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"

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

# The cache key: this script and the guest files it copies, the suite and the package list.
image_key() {
	{
		cat "$DISK_DIR/build-disk-image.sh" "$DISK_DIR/guest/fou-seed" "$DISK_DIR/guest/fou-seed.service"
		printf '%s\n' "$DISK_SUITE" "${PACKAGES[*]}"
	} | sha256sum | cut -c1-16
}

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# Unmounts whatever is mounted below DIR (deepest first): debootstrap's and our own mounts.
umount_below() { # DIR
	local m
	while read -r m; do
		umount -l -- "$m" 2>/dev/null || true
	done < <(awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
}

do_debootstrap() { # MIRROR
	log "debootstrap --variant=minbase $DISK_SUITE from $1"
	debootstrap --variant=minbase "$DISK_SUITE" "$ROOT" "$1" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
}

# grub-install and update-grub must never run against this machine's own disk from inside the
# chroot (in a container /proc shows the host's disks): both are diverted to no-ops while the
# packages install, and the boot loader is set up from outside (install_grub).
divert_grub() {
	local f
	in_root mkdir -p /usr/local/sbin
	for f in /usr/sbin/grub-install /usr/sbin/update-grub; do
		in_root dpkg-divert --local --rename --add "$f" >&2
		printf '#!/bin/sh\necho "%s: skipped while the image is built" >&2\n' "$f" >"$ROOT$f"
		chmod 0755 "$ROOT$f"
	done
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
	chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
}

undivert_grub() {
	local f
	for f in /usr/sbin/grub-install /usr/sbin/update-grub; do
		rm -f "$ROOT$f"
		in_root dpkg-divert --local --rename --remove "$f" >&2
	done
	rm -f "$ROOT/usr/sbin/policy-rc.d"
}

install_packages() {
	# No install device while building; the VM's own disk (vda) once it runs, so a grub-pc
	# upgrade inside the VM reinstalls GRUB where it belongs.
	in_root debconf-set-selections <<<'grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true'
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$ROOT/etc/apt/apt.conf.d/90fou-no-recommends"
	mkdir -p "$ROOT/etc/initramfs-tools/conf.d"
	printf 'RESUME=none\n' >"$ROOT/etc/initramfs-tools/conf.d/resume"
	log "installing ${PACKAGES[*]}"
	in_root apt-get update >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; die "apt-get update failed"; }
	in_root apt-get install -y "${PACKAGES[@]}" >>"$WORK/apt.log" 2>&1 ||
		{ tail -30 "$WORK/apt.log" >&2; die "apt-get install failed (log: $WORK/apt.log)"; }
	in_root debconf-set-selections <<<'grub-pc grub-pc/install_devices multiselect /dev/vda
grub-pc grub-pc/install_devices_empty boolean false'
}

# Deletes fou.ko and fou6.ko of the installed kernel, so `modinfo fou` finds no module.
remove_fou() {
	local f found=0
	while IFS= read -r f; do
		log "deleting ${f#"$ROOT"}"
		rm -f -- "$f"
		found=1
	done < <(find "$ROOT/lib/modules/$KVER/kernel/net" -name 'fou.ko*' -o -name 'fou6.ko*')
	((found)) || die "no fou.ko in /lib/modules/$KVER: the kernel package changed"
	in_root depmod -a "$KVER"
	in_root update-initramfs -u -k "$KVER" >>"$WORK/apt.log" 2>&1 || die "update-initramfs failed"
	local out
	out=$(in_root modinfo -k "$KVER" fou 2>&1 || true)
	[[ $out == 'modinfo: ERROR: Module fou not found.' ]] || die "modinfo fou still finds something: $out"
}

configure_users() {
	in_root usermod -p '*' root
	in_root useradd -m -s /bin/bash -p '*' admin
	printf 'admin ALL=(ALL) NOPASSWD:ALL\n' >"$ROOT/etc/sudoers.d/admin"
	chmod 0440 "$ROOT/etc/sudoers.d/admin"
	[[ $(readlink "$ROOT/bin/sh") == dash ]] || die "/bin/sh is not dash in the image"
}

configure_sshd() {
	rm -f "$ROOT"/etc/ssh/ssh_host_*
	cat >"$ROOT/etc/ssh/sshd_config.d/fou.conf" <<-EOF
		# Key logins only; no reverse lookups (the VM has no name server).
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UseDNS no
		HostKey /etc/ssh/ssh_host_ed25519_key
	EOF
}

configure_system() {
	printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$UUID" >"$ROOT/etc/fstab"
	printf 'debian\n' >"$ROOT/etc/hostname"
	: >"$ROOT/etc/apt/sources.list" # the VM has no route to any mirror; tests add their repository
	install -m 0755 "$DISK_DIR/guest/fou-seed" "$ROOT/usr/local/sbin/fou-seed"
	install -m 0644 "$DISK_DIR/guest/fou-seed.service" "$ROOT/etc/systemd/system/fou-seed.service"
	in_root systemctl enable fou-seed.service systemd-networkd.service >&2
	in_root systemctl mask "${MASKED[@]}" >&2
	cat >>"$ROOT/etc/default/grub" <<-'EOF'

		# fou-tunnel test image: serial console, no menu delay, predictable NIC names (eth0).
		GRUB_TIMEOUT=0
		GRUB_TIMEOUT_STYLE=hidden
		GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0"
		GRUB_CMDLINE_LINUX_DEFAULT=""
		GRUB_TERMINAL="serial console"
		GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
		GRUB_DISABLE_OS_PROBER=true
	EOF
	# Initramfs images built inside the VM (the next kernel's) hold only the modules this machine
	# needs: with MODULES=most, update-initramfs starts thousands of processes, each slow under
	# TCG (over 12 min for 6.12 here). The image's own initramfs is built with "most" in the
	# chroot, where "dep" cannot see the VM's devices.
	sed -i 's/^MODULES=.*/MODULES=dep/' "$ROOT/etc/initramfs-tools/initramfs.conf"
	grep -qx 'MODULES=dep' "$ROOT/etc/initramfs-tools/initramfs.conf" || die "cannot set MODULES=dep"
	in_root apt-get clean
	rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log "$ROOT"/var/cache/debconf/*-old
	rm -f "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"
	head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ROOT/etc/machine-id"
	printf '\n' >>"$ROOT/etc/machine-id"
}

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
	while (($#)); do
		case $1 in
		--print-dir) print=1 ;;
		--prune) prune=1 ;;
		-h | --help)
			usage
			exit 0
			;;
		*) usage_die "unknown argument: $1" ;;
		esac
		shift
	done
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
