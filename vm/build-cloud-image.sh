#!/usr/bin/env bash
# build-cloud-image.sh — build (once) and cache a VM image that stands in for Debian's EC2 AMI
# where the aws stack's user data is concerned: Debian's *cloud* kernel (linux-image-cloud-amd64,
# the kernel the AMI boots) and a debootstrap root with cloud-init, openssh-server, sudo,
# iproute2, kmod, nftables, iputils-ping, tcpdump and systemd. vm.sh boots it with
# `--image DIR --cloud-seed SEED`: cloud-init then reads the NoCloud seed (user-data, meta-data)
# at /var/lib/cloud/seed/nocloud/ as the AMI's cloud-init reads EC2's user data.
#
# Unlike the AMI: no disk (the root is the initramfs, as for vm/build-image.sh's image), no
# network beyond the test bridge (so apt has no sources and cloud-init's network config is off:
# the address comes from the kernel's ip= argument), and cloud-init only looks for NoCloud.
# Not a user account, an SSH key or a host key is in the image: those come from the user data.
#
# Output directory (last stdout line): $FOU_CACHE/image/cloud-<kernel-release>-<hash>/ with
# vmlinuz, base.cpio, kernel-release, rdinit, fou-modules, config, build-info (what vm.sh reads).
set -euo pipefail

PROG=build-cloud-image.sh
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
INIT_PATH=$(dirname -- "$SCRIPT_PATH")/fou-vm-init

usage() {
	cat <<EOF
Usage: $PROG [--cache-dir DIR] [--help]

Builds the cloud-init image (Debian's cloud kernel, cloud-init, sshd, sudo, nftables, ...) or
reuses the cached one, and prints its directory as the last line of stdout.

  --cache-dir DIR  cache root (default: \${FOU_CACHE:-\$HOME/.cache/fou-tunnel}); the image goes
                   to DIR/image/cloud-<kernel-release>-<hash>/; <hash> covers the kernel
                   package version, the suite, this script and fou-vm-init
Environment: FOU_CACHE, FOU_MIRROR (default: the mirror apt uses), FOU_SUITE (default: the host's).
Needs root (apt-get, debootstrap).
EOF
}

# shellcheck source=vm/lib.sh
. "$(dirname -- "$SCRIPT_PATH")/lib.sh"

CACHE_ROOT=${FOU_CACHE:-${HOME:-/root}/.cache/fou-tunnel}
while (($#)); do
	case $1 in
	--cache-dir)
		(($# >= 2)) || usage_die "--cache-dir needs a value"
		CACHE_ROOT=$2
		shift 2
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_die "unknown argument: $1" ;;
	esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, debootstrap, device nodes)"
mkdir -p -- "$CACHE_ROOT/image"
IMAGE_ROOT=$(readlink -f -- "$CACHE_ROOT/image")

for cmd in debootstrap cpio depmod modprobe dpkg-deb flock sha256sum; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd is missing: run vm/build-image.sh once (it installs the host tools)"
done

# The kernel package linux-image-cloud-amd64 depends on ("linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)").
kernel_package() {
	apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" {
			sub(/^Depends: */, "")
			n = split($0, deps, /, */)
			for (i = 1; i <= n; i++)
				if (match(deps[i], /^linux-image-[0-9][^ ]*-cloud-amd64 \(= [^)]+\)/)) {
					split(deps[i], f, /[ ()=]+/)
					print f[1], f[2]
					exit
				}
		}'
}
read -r KPKG KVERSION <<<"$(kernel_package || true)" || true
[[ -n ${KPKG:-} && -n ${KVERSION:-} ]] ||
	die "cannot resolve the kernel package linux-image-cloud-amd64 depends on (apt-cache show linux-image-cloud-amd64; apt-get update?)"
KRELEASE=${KPKG#linux-image-} # e.g. 6.1.0-57-cloud-amd64

SUITE=${FOU_SUITE:-}
if [[ -z $SUITE ]]; then
	# shellcheck disable=SC1091
	SUITE=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
fi
[[ -n $SUITE ]] || die "cannot tell the Debian suite (set FOU_SUITE)"
[[ -s $INIT_PATH ]] || die "missing $INIT_PATH"

SCRIPT_HASH=$(cat -- "$SCRIPT_PATH" "$INIT_PATH" | sha256sum | cut -c1-64)
KEY_HASH=$(printf '%s\n' "$KPKG=$KVERSION" "$SUITE" "$SCRIPT_HASH" | sha256sum | cut -c1-12)
KEY="cloud-$KRELEASE-$KEY_HASH"
IMAGE_DIR="$IMAGE_ROOT/$KEY"

image_complete() { [[ -s $1/vmlinuz && -s $1/base.cpio && -s $1/kernel-release && -s $1/rdinit ]]; }

if image_complete "$IMAGE_DIR"; then
	log "cached: $IMAGE_DIR"
	printf '%s\n' "$IMAGE_DIR"
	exit 0
fi

# One build at a time (the same lock as build-image.sh: both use debootstrap's temp dirs here).
exec 9>"$IMAGE_ROOT/.lock"
if ! flock -n 9; then
	log "another build holds $IMAGE_ROOT/.lock; waiting"
	flock 9
fi
if image_complete "$IMAGE_DIR"; then
	printf '%s\n' "$IMAGE_DIR"
	exit 0
fi

remove_tree() { # unmount what a crashed debootstrap left below $1, then delete it
	local dir=$1 mnt
	[[ -e $dir ]] || return 0
	dir=$(readlink -f -- "$dir")
	while read -r mnt; do
		umount -l -- "$mnt" 2>/dev/null || log "warning: cannot unmount $mnt"
	done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
	rm -rf --one-file-system -- "$dir"
}
for stale in "$IMAGE_ROOT"/.tmp.cloud-*; do
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
	# shellcheck disable=SC2016 # apt-get expands $(URI) itself
	MIRROR=$(apt-get indextargets --format '$(URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
		awk -v s="$SUITE" '$2 == s && $3 == "main" { sub("/dists/.*", "", $1); print $1; exit }')
fi
[[ -n $MIRROR ]] || die "cannot find the Debian mirror apt uses for $SUITE main (set FOU_MIRROR)"
log "building image $KEY: $KPKG $KVERSION, $SUITE from $MIRROR"

# The cloud kernel: downloaded and unpacked, not installed.
(cd "$TMP/deb" && apt-get download -q "$KPKG=$KVERSION" >&2) || die "apt-get download $KPKG=$KVERSION failed"
DEB=$(find "$TMP/deb" -maxdepth 1 -name '*.deb' -print -quit)
[[ -n $DEB ]] || die "no .deb downloaded"
dpkg-deb -x "$DEB" "$TMP/kernel"
KMOD_SRC=$TMP/kernel/lib/modules/$KRELEASE
[[ -f $TMP/kernel/boot/vmlinuz-$KRELEASE && -d $KMOD_SRC ]] || die "unexpected layout in $DEB"

log "debootstrap $SUITE (minbase) with cloud-init — takes a few minutes"
# python3-cffi-backend: provides the virtual python3-cffi-backend-api-* that python3-cryptography (cloud-init -> python3-oauthlib) needs; debootstrap resolves no virtual packages
PACKAGES=cloud-init,python3-cffi-backend,openssh-server,sudo,iproute2,kmod,nftables,iputils-ping,tcpdump,systemd-sysv,udev,procps
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$TMP/debootstrap.log" 2>&1; then
	tail -n 30 "$TMP/debootstrap.log" >&2
	[[ -f $ROOT/debootstrap/debootstrap.log ]] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
	die "debootstrap failed"
fi
awk -v d="$ROOT/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l -- "$m"; done

log "configuring the root"
rm -rf --one-file-system -- "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* \
	"$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
	"$ROOT"/usr/share/locale/* "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/log/*.log \
	"$ROOT"/debootstrap
# No host keys: the user data brings the one to serve (vm.sh adds a throwaway one, which
# cloud-init's ssh_deletekeys removes). sshd is Debian's default configuration (as on the AMI)
# but for reverse DNS, which only slows logins down on a network without a resolver.
rm -f -- "$ROOT"/etc/ssh/ssh_host_*
printf '# fou-tunnel cloud test VM: no resolver on the test bridge\nUseDNS no\n' >"$ROOT/etc/ssh/sshd_config.d/fou-tunnel-vm.conf"
# The VM has no network beyond the test bridge: no apt sources (an `apt-get update` finds nothing
# to fetch, an install of an installed package succeeds), and cloud-init leaves them alone.
: >"$ROOT/etc/apt/sources.list"
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/machine-id"
printf 'fou-cloud-vm\n' >"$ROOT/etc/hostname"
printf '# rootfs is the initramfs\n' >"$ROOT/etc/fstab"
# What cloud-init may and may not do in this VM (image configuration, not user data):
# only the NoCloud seed; no network configuration (it would replace the ip= address with DHCP on
# a bridge without a DHCP server); apt sources kept; no locale generation (slow under TCG).
cat >"$ROOT/etc/cloud/cloud.cfg.d/90-fou-tunnel-vm.cfg" <<'EOF'
# fou-tunnel cloud test VM (vm/build-cloud-image.sh)
datasource_list: [NoCloud, None]
network: {config: disabled}
apt: {preserve_sources_list: true}
locale: false
EOF
# vm.sh's per-VM cpio carries files only, into directories that exist: the seed's among them.
install -d -m 0755 "$ROOT/var/lib/cloud/seed/nocloud" "$ROOT/etc/ssh" "$ROOT/etc/modprobe.d"
install -d -m 0700 "$ROOT/root/.ssh"
install -m 0755 -- "$INIT_PATH" "$ROOT/sbin/fou-vm-init"
install -d -m 0755 "$ROOT/persist"
ln -sfn sbin/fou-vm-init "$ROOT/init"

chroot "$ROOT" systemctl enable systemd-networkd.service systemd-network-generator.service >/dev/null 2>&1 ||
	die "systemctl enable systemd-networkd failed"
for unit in cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service; do
	[[ -e $ROOT/lib/systemd/system/$unit ]] || die "cloud-init has no $unit"
done
for unit in apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
	e2scrub_all.timer e2scrub_all.service e2scrub_reap.service fstrim.timer fstrim.service \
	getty@tty1.service systemd-networkd-wait-online.service systemd-remount-fs.service \
	systemd-timesyncd.service dpkg-db-backup.timer dpkg-db-backup.service \
	getty-static.service systemd-random-seed.service proc-sys-fs-binfmt_misc.automount \
	dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
	sys-kernel-config.mount sys-fs-fuse-connections.mount; do
	ln -sfn /dev/null "$ROOT/etc/systemd/system/$unit"
done
mkdir -p "$ROOT/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' >"$ROOT/etc/systemd/journald.conf.d/fou-tunnel.conf"

# Modules: networking (fou, ipip, sit, ip_gre, nf_tables, ...), crypto, lib, virtio, the NICs.
log "copying a subset of the $KRELEASE modules"
KMOD_DST=$ROOT/lib/modules/$KRELEASE
mkdir -p -- "$KMOD_DST/kernel"
cp -a -- "$KMOD_SRC"/modules.order "$KMOD_SRC"/modules.builtin "$KMOD_SRC"/modules.builtin.modinfo "$KMOD_DST/"
for sub in net lib crypto arch/x86/crypto drivers/virtio drivers/net drivers/block fs/ext4 fs/jbd2 fs/overlayfs fs/mbcache.ko drivers/misc; do
	[[ -e $KMOD_SRC/kernel/$sub ]] || continue
	mkdir -p -- "$KMOD_DST/kernel/$(dirname -- "$sub")"
	cp -a -- "$KMOD_SRC/kernel/$sub" "$KMOD_DST/kernel/$sub"
done
depmod -b "$ROOT" "$KRELEASE" || die "depmod failed"
# What the tunnel components load must be there, with its dependencies.
for mod in fou fou6 ipip sit ip_gre nf_tables virtio_net; do
	modprobe -d "$ROOT" -S "$KRELEASE" --show-depends "$mod" >/dev/null 2>&1 || die "$mod is not in $KPKG (or not copied)"
done
ROOT_REAL=$(readlink -f -- "$ROOT")
find "$(readlink -f -- "$KMOD_DST/kernel")" \( -name 'fou.ko*' -o -name 'fou6.ko*' \) -printf '%p\n' |
	sed "s|^$ROOT_REAL/||" | LC_ALL=C sort >"$OUT/fou-modules"

log "writing base.cpio"
(cd "$ROOT" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio -o -0 -H newc --quiet) >"$OUT/base.cpio" || die "cpio failed"
cp -- "$TMP/kernel/boot/vmlinuz-$KRELEASE" "$OUT/vmlinuz"
cp -- "$TMP/kernel/boot/config-$KRELEASE" "$OUT/config" 2>/dev/null || true
printf '%s\n' "$KRELEASE" >"$OUT/kernel-release"
printf '/sbin/fou-vm-init\n' >"$OUT/rdinit"
{
	printf 'package=%s\nversion=%s\nsuite=%s\nmirror=%s\n' "$KPKG" "$KVERSION" "$SUITE" "$MIRROR"
	# shellcheck disable=SC2016 # ${Version} is dpkg-query's field, not the shell's
	printf 'cloud_init=%s\n' "$(chroot "$ROOT" dpkg-query -W -f '${Version}' cloud-init)"
	printf 'script_sha256=%s\nbuilt=%s\nbuild_seconds=%s\n' "$SCRIPT_HASH" "$(date -u +%FT%TZ)" "$((SECONDS - START))"
	printf 'base_cpio_bytes=%s\n' "$(stat -c %s "$OUT/base.cpio")"
} >"$OUT/build-info"

mv -T -- "$OUT" "$IMAGE_DIR" || die "cannot move the image into $IMAGE_DIR"
log "built $IMAGE_DIR in $((SECONDS - START)) s ($(du -sh "$IMAGE_DIR/base.cpio" | cut -f1) base.cpio)"
printf '%s\n' "$IMAGE_DIR"
