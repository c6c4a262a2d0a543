# image-root.sh — the root file system build-image.sh makes: the kernel package unpacked (not
# installed), a debootstrap minbase root configured for a test VM, and the subset of the
# kernel's modules it carries. Sourced by build-image.sh (after vm/lib.sh and image-lib.sh);
# part of the image hash. The functions use build-image.sh's globals (TMP, ROOT, OUT, KPKG, …).
# shellcheck shell=bash

# What the initramfs loads (the panic device first, the disks, their file system, the
# overlays, the NIC); the root gets them too (modprobe there finds them loaded).
INIT_MODULES=(pvpanic_pci virtio_pci virtio_blk ext4 overlay virtio_net)

# Kernel: download and unpack into TMP/kernel, no installation (no hooks, no grub).
unpack_kernel() {
	log "downloading $KPKG=$KVERSION"
	(cd "$TMP/deb" && apt-get download -q "$KPKG=$KVERSION" >&2 2>/dev/null) ||
		(cd "$TMP/deb" && apt_update_once && apt-get download -q "$KPKG=$KVERSION" >&2) ||
		die "apt-get download $KPKG=$KVERSION failed"
	local deb
	deb=$(find "$TMP/deb" -maxdepth 1 -name '*.deb' -print -quit)
	[[ -n $deb ]] || die "no .deb downloaded"
	dpkg-deb -x "$deb" "$TMP/kernel"
	KMOD_SRC=$TMP/kernel/lib/modules/$KRELEASE
	[[ -f $TMP/kernel/boot/vmlinuz-$KRELEASE && -d $KMOD_SRC ]] ||
		die "unexpected layout in $deb (no boot/vmlinuz-$KRELEASE or lib/modules/$KRELEASE)"
}

# Root file system: debootstrap minbase with what a test VM runs.
debootstrap_root() {
	log "debootstrap $SUITE (minbase) — takes about a minute"
	local packages=openssh-server,iproute2,kmod,iputils-ping,tcpdump,systemd-sysv,udev,procps,nftables,sudo
	if ! debootstrap --variant=minbase --include="$packages" "$SUITE" "$ROOT" "$MIRROR" >"$TMP/debootstrap.log" 2>&1; then
		tail -n 30 "$TMP/debootstrap.log" >&2
		[[ -f $ROOT/debootstrap/debootstrap.log ]] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
		die "debootstrap failed"
	fi
	# debootstrap unmounts what it mounted; make sure.
	awk -v d="$ROOT/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l -- "$m"; done
}

configure_root() {
	log "configuring the root"
	# Trim: apt caches and lists, docs, man pages, locales.
	rm -rf --one-file-system -- "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* \
		"$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
		"$ROOT"/usr/share/locale/* "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/log/*.log \
		"$ROOT"/debootstrap
	# Host keys are per VM (vm.sh adds one); no DNS; root logs in with a key only.
	rm -f -- "$ROOT"/etc/ssh/ssh_host_*
	cat >"$ROOT/etc/ssh/sshd_config.d/fou-tunnel.conf" <<'CONF'
# fou-tunnel test VM
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
# Every step of an up is one login. Under TCG, PAM's stacks (a dozen modules loaded per login,
# pam_motd's run-parts) cost ~1 s of each; key-only root logins need none of it.
UsePAM no
PrintMotd no
PrintLastLog no
CONF
	: >"$ROOT/etc/resolv.conf"
	: >"$ROOT/etc/machine-id"
	printf 'fou-vm\n' >"$ROOT/etc/hostname"
	printf '# / is an overlay (root.img + tmpfs); /persist, /etc and /var/lib are mounted by the initramfs\n' >"$ROOT/etc/fstab"
	# the initramfs copies vm.sh's per-VM files (files only) into these existing directories
	install -d -m 0700 "$ROOT/root/.ssh"
	install -d -m 0755 "$ROOT/etc/ssh" "$ROOT/etc/modprobe.d" "$ROOT/persist"
	# Units: what only slows the boot down masked (image-lib.sh).
	configure_units "$ROOT"
}

# Kernel modules: networking, crypto, lib, virtio and the virtual NICs (not the 400 MB of all),
# and what the initramfs loads with every dependency and softdep (ext4 -> jbd2, mbcache, crc16,
# crc32c) as modprobe resolves them in the whole tree. Writes OUT/fou-modules.
copy_modules() {
	log "copying a subset of the $KRELEASE modules"
	KMOD_DST=$ROOT/lib/modules/$KRELEASE
	mkdir -p -- "$KMOD_DST/kernel/drivers/net"
	cp -a -- "$KMOD_SRC"/modules.order "$KMOD_SRC"/modules.builtin "$KMOD_SRC"/modules.builtin.modinfo "$KMOD_DST/"
	local sub mod deps kind path rel
	for sub in net lib crypto arch/x86/crypto drivers/virtio; do
		[[ -d $KMOD_SRC/kernel/$sub ]] || continue
		mkdir -p -- "$KMOD_DST/kernel/$(dirname -- "$sub")"
		cp -a -- "$KMOD_SRC/kernel/$sub" "$KMOD_DST/kernel/$sub"
	done
	# no wireless: systemd-networkd's lookup of the nl80211 family would load cfg80211 (~2 s at boot)
	rm -rf -- "$KMOD_DST/kernel/net/wireless" "$KMOD_DST/kernel/net/mac80211"
	find "$KMOD_SRC/kernel/drivers/net" -maxdepth 1 -type f -name '*.ko*' -exec cp -a -t "$KMOD_DST/kernel/drivers/net/" {} +
	for sub in vxlan wireguard bonding team ipvlan; do
		[[ -d $KMOD_SRC/kernel/drivers/net/$sub ]] && cp -a -- "$KMOD_SRC/kernel/drivers/net/$sub" "$KMOD_DST/kernel/drivers/net/"
	done
	depmod -b "$TMP/kernel" "$KRELEASE" || die "depmod of the kernel package's modules failed"
	for mod in "${INIT_MODULES[@]}"; do
		deps=$(modprobe -d "$TMP/kernel" -S "$KRELEASE" --show-depends "$mod") || die "modprobe --show-depends $mod failed"
		while read -r kind path _; do
			[[ $kind == insmod ]] || continue # "builtin NAME": nothing to copy
			rel=${path#"$KMOD_SRC/"}
			[[ $rel != "$path" && -f $path ]] || die "unexpected module path $path"
			mkdir -p -- "$KMOD_DST/$(dirname -- "$rel")"
			cp -a -- "$path" "$KMOD_DST/$rel"
		done <<<"$deps"
	done
	depmod -b "$ROOT" "$KRELEASE" || die "depmod failed"
	for mod in "${INIT_MODULES[@]}"; do
		modprobe -d "$ROOT" -S "$KRELEASE" --show-depends "$mod" >/dev/null 2>&1 || die "$mod is not loadable in the image"
	done
	# Paths without symlinks (bookworm's /lib is a symlink to usr/lib): vm.sh overwrites these files.
	local root_real
	root_real=$(readlink -f -- "$ROOT")
	find "$(readlink -f -- "$KMOD_DST/kernel")" \( -name 'fou.ko*' -o -name 'fou6.ko*' \) -printf '%p\n' |
		sed "s|^$root_real/||" | LC_ALL=C sort >"$OUT/fou-modules"
	[[ -s $OUT/fou-modules ]] || die "no fou module in $KPKG"
}
