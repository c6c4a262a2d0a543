# disk-image-root.sh — the root file system of build-disk-image.sh: debootstrap, the packages
# (with GRUB's installers diverted), the kernel without fou, users, sshd, units, GRUB's settings.
# Sourced by build-disk-image.sh; part of the image's cache key. The functions use its globals
# (ROOT, WORK, KVER, UUID, PACKAGES, MASKED).
# shellcheck shell=bash

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

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
