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
INIT_PATH=$(dirname -- "$SCRIPT_PATH")/fou-vm-initrd # the initramfs's /init
LIB_PATH=$(dirname -- "$SCRIPT_PATH")/image-lib.sh

usage() {
	cat <<EOF
Usage: $PROG [--cache-dir DIR] [--prune] [--help]

Builds the new-kernel image for the fou-tunnel test VMs, or reuses the cached one, and prints
its directory as the last line of stdout.

  --cache-dir DIR  cache root (default: \${FOU_CACHE:-\$HOME/.cache/fou-tunnel});
                   the image goes to DIR/image/<key>/, where <key> changes with the kernel
                   package version, with this script, image-lib.sh, fou-vm-initrd and
                   the busybox-static version
  --prune          after a successful build/lookup, delete other cached images
  --help           this text

Environment: FOU_CACHE (cache root), FOU_MIRROR (Debian mirror for debootstrap; default: the one
apt uses for the host's release), FOU_SUITE (default: the host's VERSION_CODENAME).
Needs root (apt-get, debootstrap).
EOF
}

# shellcheck source=vm/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"
# shellcheck source=vm/image-lib.sh
. "$LIB_PATH"

CACHE_ROOT=${FOU_CACHE:-${HOME:-/root}/.cache/fou-tunnel}
PRUNE=0
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

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, debootstrap, device nodes)"
mkdir -p -- "$CACHE_ROOT/image"
IMAGE_ROOT=$(readlink -f -- "$CACHE_ROOT/image")

# ---------------------------------------------------------------- host tools
# command -> Debian package providing it
declare -A NEED=(
	[qemu-system-x86_64]=qemu-system-x86
	[debootstrap]=debootstrap
	[cpio]=cpio
	[ssh]=openssh-client
	[ssh-keygen]=openssh-client
	[depmod]=kmod
	[modprobe]=kmod
	[ip]=iproute2
	[flock]=util-linux
	[dpkg-deb]=dpkg
	[sha256sum]=coreutils
	[mkfs.ext4]=e2fsprogs # the root image; vm.sh formats each VM's persistent disk
	[e2fsck]=e2fsprogs
	[xz]=xz-utils
	[mknod]=coreutils
)
APT_UPDATED=0
apt_update_once() {
	if ((APT_UPDATED == 0)); then
		log "apt-get update"
		apt-get update -q >&2 || die "apt-get update failed"
		APT_UPDATED=1
	fi
}
ensure_tools() {
	local cmd missing=()
	for cmd in "${!NEED[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
	done
	# the initramfs's busybox: the static one (a package, not a command name)
	[[ $(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null) == *" installed" ]] || missing+=(busybox-static)
	((${#missing[@]})) || return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	log "installing: ${missing[*]}"
	apt_update_once
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
	for cmd in "${!NEED[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || die "still missing after install: $cmd"
	done
}
ensure_tools

# ---------------------------------------------------------------- what to build
# The kernel package linux-image-amd64 depends on, with its exact version, from one apt-cache
# call ("Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)"); apt's package cache may be
# disabled (Docker images), so every apt-cache call costs ~0.5 s: keep the warm path to one.
kernel_package() {
	apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" {
			sub(/^Depends: */, "")
			n = split($0, deps, /, */)
			for (i = 1; i <= n; i++)
				if (match(deps[i], /^linux-image-[0-9][^ ]* \(= [^)]+\)/)) {
					split(deps[i], f, /[ ()=]+/)
					print f[1], f[2]
					exit
				}
		}'
}
# apt's answer changes only with its lists, its configuration or dpkg's status: every VM start
# asks, so the answer is kept beside the images, keyed on their modification times (the files in
# sources.list.d and preferences.d too: a pin edited in place changes the candidate).
apt_stamp() {
	stat -c '%n %Y' /var/lib/apt/lists /var/lib/dpkg/status /etc/apt /etc/apt/* /etc/apt/*/* 2>/dev/null |
		sha256sum | cut -c1-16
}
KPKG_CACHE=$IMAGE_ROOT/.linux-image-amd64
KPKG_LINE=
if [[ -s $KPKG_CACHE ]]; then
	read -r stamp pkg ver <"$KPKG_CACHE" || true
	[[ ${stamp:-} == "$(apt_stamp)" && -n ${ver:-} ]] && KPKG_LINE="$pkg $ver"
fi
if [[ -z $KPKG_LINE ]]; then
	KPKG_LINE=$(kernel_package || true)
	if [[ -z $KPKG_LINE ]]; then
		apt_update_once
		KPKG_LINE=$(kernel_package || true)
	fi
	if [[ -n $KPKG_LINE ]]; then
		mkdir -p -- "$IMAGE_ROOT"
		printf '%s %s\n' "$(apt_stamp)" "$KPKG_LINE" >"$KPKG_CACHE.$$" && mv -f -- "$KPKG_CACHE.$$" "$KPKG_CACHE"
	fi
fi
read -r KPKG KVERSION <<<"$KPKG_LINE" || true
[[ -n ${KPKG:-} && -n ${KVERSION:-} ]] ||
	die "cannot resolve the kernel package linux-image-amd64 depends on (apt-cache show linux-image-amd64)"
KRELEASE=${KPKG#linux-image-} # e.g. 6.1.0-56-amd64

SUITE=${FOU_SUITE:-}
if [[ -z $SUITE ]]; then
	# shellcheck disable=SC1091
	SUITE=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
fi
[[ -n $SUITE ]] || die "cannot tell the Debian suite (set FOU_SUITE)"

[[ -s $INIT_PATH && -s $LIB_PATH ]] || die "missing $INIT_PATH or $LIB_PATH"
# all three files and the busybox version: a change to any gives a new image
BUSYBOX_VERSION=$(dpkg-query -W -f='${Version}' busybox-static)
SCRIPT_HASH=$({ cat -- "$SCRIPT_PATH" "$LIB_PATH" "$INIT_PATH" && printf 'busybox-static=%s\n' "$BUSYBOX_VERSION"; } |
	sha256sum | cut -c1-64)
KEY_HASH=$(printf '%s\n' "$KPKG=$KVERSION" "$SUITE" "$SCRIPT_HASH" | sha256sum | cut -c1-12)
KEY="$KRELEASE-$KEY_HASH"
IMAGE_DIR="$IMAGE_ROOT/$KEY"

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

# ---------------------------------------------------------------- build (locked)
exec 9>"$IMAGE_ROOT/.lock"
if ! flock -n 9; then
	log "another build holds $IMAGE_ROOT/.lock; waiting"
	flock 9
fi
if image_complete "$IMAGE_DIR"; then
	log "built by another process: $IMAGE_DIR"
	prune_others
	printf '%s\n' "$IMAGE_DIR"
	exit 0
fi

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

MIRROR=${FOU_MIRROR:-}
if [[ -z $MIRROR ]]; then
	# "http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages bookworm main"
	# shellcheck disable=SC2016 # apt-get expands $(URI) itself
	MIRROR=$(apt-get indextargets --format '$(URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
		awk -v s="$SUITE" '$2 == s && $3 == "main" { sub("/dists/.*", "", $1); print $1; exit }')
fi
[[ -n $MIRROR ]] || die "cannot find the Debian mirror apt uses for $SUITE main (set FOU_MIRROR)"

log "building image $KEY: $KPKG $KVERSION, $SUITE from $MIRROR"

# Kernel: download and unpack, no installation (no hooks, no grub).
log "downloading $KPKG=$KVERSION"
(cd "$TMP/deb" && apt-get download -q "$KPKG=$KVERSION" >&2 2>/dev/null) ||
	(cd "$TMP/deb" && apt_update_once && apt-get download -q "$KPKG=$KVERSION" >&2) ||
	die "apt-get download $KPKG=$KVERSION failed"
DEB=$(find "$TMP/deb" -maxdepth 1 -name '*.deb' -print -quit)
[[ -n $DEB ]] || die "no .deb downloaded"
dpkg-deb -x "$DEB" "$TMP/kernel"
KMOD_SRC=$TMP/kernel/lib/modules/$KRELEASE
[[ -f $TMP/kernel/boot/vmlinuz-$KRELEASE && -d $KMOD_SRC ]] ||
	die "unexpected layout in $DEB (no boot/vmlinuz-$KRELEASE or lib/modules/$KRELEASE)"

# Root file system.
log "debootstrap $SUITE (minbase) — takes about a minute"
PACKAGES=openssh-server,iproute2,kmod,iputils-ping,tcpdump,systemd-sysv,udev,procps,nftables,sudo
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$TMP/debootstrap.log" 2>&1; then
	tail -n 30 "$TMP/debootstrap.log" >&2
	[[ -f $ROOT/debootstrap/debootstrap.log ]] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
	die "debootstrap failed"
fi
# debootstrap unmounts what it mounted; make sure.
awk -v d="$ROOT/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l -- "$m"; done

log "configuring the root"
# Trim: apt caches and lists, docs, man pages, locales.
rm -rf --one-file-system -- "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* \
	"$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
	"$ROOT"/usr/share/locale/* "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/log/*.log \
	"$ROOT"/debootstrap
# Host keys are per VM (vm.sh adds one); no DNS; root logs in with a key only.
rm -f -- "$ROOT"/etc/ssh/ssh_host_*
cat >"$ROOT/etc/ssh/sshd_config.d/fou-tunnel.conf" <<'EOF'
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
EOF
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/machine-id"
printf 'fou-vm\n' >"$ROOT/etc/hostname"
printf '# / is an overlay (root.img + tmpfs); /persist, /etc and /var/lib are mounted by the initramfs\n' >"$ROOT/etc/fstab"
# the initramfs copies vm.sh's per-VM files (files only) into these existing directories
install -d -m 0700 "$ROOT/root/.ssh"
install -d -m 0755 "$ROOT/etc/ssh" "$ROOT/etc/modprobe.d" "$ROOT/persist"

# Units: networkd on; what only slows the boot down masked (image-lib.sh).
configure_units "$ROOT"

# Kernel modules: networking, crypto, lib, virtio and the virtual NICs (not the 400 MB of all).
log "copying a subset of the $KRELEASE modules"
KMOD_DST=$ROOT/lib/modules/$KRELEASE
mkdir -p -- "$KMOD_DST/kernel/drivers/net"
cp -a -- "$KMOD_SRC"/modules.order "$KMOD_SRC"/modules.builtin "$KMOD_SRC"/modules.builtin.modinfo "$KMOD_DST/"
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
# What the initramfs loads (the panic device first, the disks, their file system, the overlays,
# the NIC),
# with every dependency and softdep (ext4 -> jbd2, mbcache, crc16, crc32c) as modprobe resolves
# them in the whole tree; the root gets them too (modprobe there finds them loaded).
INIT_MODULES=(pvpanic_pci virtio_pci virtio_blk ext4 overlay virtio_net)
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
ROOT_REAL=$(readlink -f -- "$ROOT")
find "$(readlink -f -- "$KMOD_DST/kernel")" \( -name 'fou.ko*' -o -name 'fou6.ko*' \) -printf '%p\n' |
	sed "s|^$ROOT_REAL/||" | LC_ALL=C sort >"$OUT/fou-modules"
[[ -s $OUT/fou-modules ]] || die "no fou module in $KPKG"

# The image: the root disk and the initramfs that mounts it.
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

mv -T -- "$OUT" "$IMAGE_DIR" || die "cannot move the image into $IMAGE_DIR"
log "built $IMAGE_DIR in $((SECONDS - START)) s ($(du -sh "$IMAGE_DIR/root.img" | cut -f1) root.img, $(du -sh "$IMAGE_DIR/initrd.cpio" | cut -f1) initrd.cpio)"
prune_others
printf '%s\n' "$IMAGE_DIR"
