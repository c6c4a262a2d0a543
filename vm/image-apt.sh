# image-apt.sh — what build-image.sh builds from, as apt knows it here: the host tools it
# installs, the kernel package linux-image-amd64 depends on, the suite and the mirror. Sourced by
# build-image.sh (after vm/lib.sh); part of the image hash.
# shellcheck shell=bash

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

# Sets KPKG, KVERSION and KRELEASE (e.g. 6.1.0-56-amd64): from the kept answer if apt's state
# is unchanged, else from apt-cache (after an apt-get update if it knows no kernel).
resolve_kernel_package() {
	local cache=$IMAGE_ROOT/.linux-image-amd64 line='' stamp pkg ver
	if [[ -s $cache ]]; then
		read -r stamp pkg ver <"$cache" || true
		[[ ${stamp:-} == "$(apt_stamp)" && -n ${ver:-} ]] && line="$pkg $ver"
	fi
	if [[ -z $line ]]; then
		line=$(kernel_package || true)
		if [[ -z $line ]]; then
			apt_update_once
			line=$(kernel_package || true)
		fi
		if [[ -n $line ]]; then
			mkdir -p -- "$IMAGE_ROOT"
			printf '%s %s\n' "$(apt_stamp)" "$line" >"$cache.$$" && mv -f -- "$cache.$$" "$cache"
		fi
	fi
	read -r KPKG KVERSION <<<"$line" || true
	[[ -n ${KPKG:-} && -n ${KVERSION:-} ]] ||
		die "cannot resolve the kernel package linux-image-amd64 depends on (apt-cache show linux-image-amd64)"
	# shellcheck disable=SC2034 # used by build-image.sh
	KRELEASE=${KPKG#linux-image-}
}

# Sets SUITE: FOU_SUITE, else the host's VERSION_CODENAME.
resolve_suite() {
	SUITE=${FOU_SUITE:-}
	if [[ -z $SUITE ]]; then
		# shellcheck disable=SC1091
		SUITE=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
	fi
	[[ -n $SUITE ]] || die "cannot tell the Debian suite (set FOU_SUITE)"
}

# Sets MIRROR: FOU_MIRROR, else the mirror apt uses for SUITE main.
resolve_mirror() {
	MIRROR=${FOU_MIRROR:-}
	if [[ -z $MIRROR ]]; then
		# "http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages bookworm main"
		# shellcheck disable=SC2016 # apt-get expands $(URI) itself
		MIRROR=$(apt-get indextargets --format '$(URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
			awk -v s="$SUITE" '$2 == s && $3 == "main" { sub("/dists/.*", "", $1); print $1; exit }')
	fi
	[[ -n $MIRROR ]] || die "cannot find the Debian mirror apt uses for $SUITE main (set FOU_MIRROR)"
}
