#!/usr/bin/env bash
# kernel-repo.sh — a small signed Debian repository with bookworm's linux-image-6.12-amd64 and
# what it needs beyond the disk image's packages, so a VM with no route to any mirror can
# upgrade its kernel with apt from this machine. Cached under $FOU_CACHE/disk/.
set -euo pipefail

PROG=kernel-repo.sh
# shellcheck source=vm/disk/lib.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/lib.sh"

PACKAGE=linux-image-6.12-amd64
REPO_SUITE=bookworm-fou
REPO_COMPONENT=main
KEY_NAME='fou-tunnel kernel repository (test key)'

usage() {
	cat <<EOF
Usage: $PROG [--image DIR] [--package NAME]

Builds (or finds in the cache) a dists-style repository holding NAME (default $PACKAGE),
the versioned package it depends on and any other package the disk image lacks (apt's own
resolution against the image's dpkg status), downloaded with apt-get download. Signed with a
key generated once and kept in \$FOU_CACHE/disk/repo-key/. Prints the repository directory as
the last stdout line; in it:
  dists/$REPO_SUITE/{Release,InRelease,Release.gpg}, dists/$REPO_SUITE/$REPO_COMPONENT/binary-amd64/Packages{,.gz}
  pool/$REPO_COMPONENT/*.deb
  key.gpg (binary keyring for signed-by=), key.asc (armored), packages (name=version lines)
A host then uses:  deb [signed-by=/etc/apt/keyrings/fou-kernel.gpg] http://ADDRESS:PORT/ $REPO_SUITE $REPO_COMPONENT
  --image DIR   the disk image whose packages count as present (default: build-disk-image.sh's,
                which builds it first if it is not cached yet)
Env: FOU_CACHE. Needs root (the image build; apt-get update, if apt does not know NAME yet).
EOF
}

# Package=version lines apt would install on the image for NAME, without recommends.
resolve() { # IMAGE_DIR NAME
	apt-get -s -o Dir::State::status="$1/dpkg-status" -o APT::Install-Recommends=false \
		-o Debug::NoLocking=true install "$2" 2>/dev/null |
		awk '$1 == "Inst" { v = $3; gsub(/[()]/, "", v); print $2 "=" v }' | sort
}

known() { # (the whole output is read first: grep -q would end the pipe early, a failure under pipefail)
	local out
	out=$(apt-cache policy "$1" 2>/dev/null)
	[[ $out == *"Candidate: "[0-9]* ]]
}

# The signing key: generated once (ed25519, no passphrase, no expiry) in its own GnuPG home.
ensure_key() {
	export GNUPGHOME="$DISK_CACHE/repo-key"
	if [[ ! -s $GNUPGHOME/key.gpg ]]; then
		log "generating the repository's signing key"
		rm -rf -- "$GNUPGHOME"
		mkdir -p "$DISK_CACHE"
		mkdir -m 0700 "$GNUPGHOME"
		gpg --batch --quiet --passphrase '' --quick-gen-key "$KEY_NAME" ed25519 sign never 2>&1 | sed 's/^/gpg: /' >&2
		gpg --batch --export >"$GNUPGHOME/key.gpg.tmp"
		gpg --batch --armor --export >"$GNUPGHOME/key.asc"
		mv -- "$GNUPGHOME/key.gpg.tmp" "$GNUPGHOME/key.gpg"
	fi
}

# Packages, Packages.gz and a Release covering them, signed inline and detached.
write_indexes() { # REPO
	local repo=$1 d="dists/$REPO_SUITE"
	mkdir -p "$repo/$d/$REPO_COMPONENT/binary-amd64"
	(cd "$repo" && apt-ftparchive packages "pool/$REPO_COMPONENT") >"$repo/$d/$REPO_COMPONENT/binary-amd64/Packages"
	gzip -9nk "$repo/$d/$REPO_COMPONENT/binary-amd64/Packages"
	(cd "$repo" && apt-ftparchive \
		-o APT::FTPArchive::Release::Origin=fou-tunnel \
		-o APT::FTPArchive::Release::Label=fou-tunnel \
		-o APT::FTPArchive::Release::Suite="$REPO_SUITE" \
		-o APT::FTPArchive::Release::Codename="$REPO_SUITE" \
		-o APT::FTPArchive::Release::Architectures=amd64 \
		-o APT::FTPArchive::Release::Components="$REPO_COMPONENT" \
		release "$d") >"$repo/$d/Release.tmp"
	mv -- "$repo/$d/Release.tmp" "$repo/$d/Release"
	gpg --batch --yes --clearsign -o "$repo/$d/InRelease" "$repo/$d/Release"
	gpg --batch --yes --armor --detach-sign -o "$repo/$d/Release.gpg" "$repo/$d/Release"
	gpgv --keyring "$GNUPGHOME/key.gpg" "$repo/$d/InRelease" 2>/dev/null || die "the signature does not verify"
}

build() { # DEST LIST
	local dest=$1 list=$2 work
	work=$(mktemp -d "$DISK_CACHE/.repo.XXXXXX")
	# shellcheck disable=SC2064 # the path is fixed now
	trap "rm -rf -- '$work'" EXIT
	mkdir -p "$work/pool/$REPO_COMPONENT"
	chmod 0755 "$work" "$work/pool" "$work/pool/$REPO_COMPONENT"
	local -a pkgs
	mapfile -t pkgs <<<"$list"
	log "downloading ${pkgs[*]}"
	(cd "$work/pool/$REPO_COMPONENT" && apt-get -o APT::Sandbox::User=root download "${pkgs[@]}" >&2) || die "apt-get download failed"
	write_indexes "$work"
	cp -- "$GNUPGHOME/key.gpg" "$GNUPGHOME/key.asc" "$work/"
	printf '%s\n' "$list" >"$work/packages"
	chmod -R a+rX "$work"
	mv -- "$work" "$dest"
	trap - EXIT
}

main() {
	local image='' package=$PACKAGE
	parse_options --image=image --package=package -h -- "$@"
	# On a fresh machine (CI) the image is built here first: its dpkg status decides what to fetch.
	[[ -n $image ]] || image=$("$DISK_DIR/build-disk-image.sh" | tail -1)
	[[ -s $image/dpkg-status ]] || die "$image has no dpkg-status: not a disk image directory"
	# gpg-agent too: gpg alone (a dependency of something else) cannot generate the key.
	ensure_tools gpg:gnupg gpg-agent:gpg-agent gpgv:gpgv apt-ftparchive:apt-utils gzip:gzip
	mkdir -p "$DISK_CACHE"
	exec 9>"$DISK_CACHE/.kernel-repo.lock"
	flock 9
	if ! known "$package"; then
		need_root
		log "apt does not know $package yet: apt-get update"
		apt-get update >&2 || die "apt-get update failed"
		known "$package" || die "no package $package in this machine's apt sources"
	fi
	local list key dest
	list=$(resolve "$image" "$package")
	[[ -n $list ]] || die "apt resolves nothing to install for $package on the image"
	ensure_key
	key=$( {
		printf '%s\n' "$list" "$REPO_SUITE" "$REPO_COMPONENT"
		cat "$DISK_DIR/kernel-repo.sh" "$GNUPGHOME/key.gpg"
	} | sha256sum | cut -c1-16)
	dest="$DISK_CACHE/repo-$key"
	[[ -s $dest/dists/$REPO_SUITE/InRelease ]] || build "$dest" "$list"
	log "repository with $(paste -sd' ' "$dest/packages")"
	printf '%s\n' "$dest"
}

main "$@"
