# The install step of KernelUpgrade (components/kernelUpgradeInstall.ts): when the running kernel
# lacks fou (fou_missing, kernel-fou.sh), the kernel package of the host's distribution family,
# the bootloader pointed at it, and the reboot; when only `ip fou` lacks, iproute2 alone. The
# step sets, quoted: f (its state file: pending=, old=, bootId=, new=), fou_log (what the package
# managers printed), fou_at (host and step, for messages), fou_modules (kernel-fou.sh),
# fou_package (the kernel package; empty: the family's default), fou_repository (an apt source
# line; empty: none), fou_key (its ASCII-armored key; empty: none), fou_apt_gpg_line and
# fou_apt_asc_line (the line naming the dearmored or the armored key by signed-by=), fou_key_gpg,
# fou_key_asc and fou_apt_list (where the key and the line go), and the host's paths:
# fou_kernel_release, fou_boot_id, fou_os_release, fou_boot (where kernels are installed),
# fou_keyrings, fou_sources_list, fou_grub_cfg. Tests point the paths at a fake host.
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step

# The create: `kernel=<rel>` and `action=none`, `action=ip` or `action=reboot` (with `to=` and
# `bootId=`) on stdout.
fou_upgrade_create() {
  read -r rel < "$fou_kernel_release"
  nl='
'
  fou_missing
  if [ -z "$kmiss" ] && [ -z "$ipmiss" ]; then echo "kernel=$rel"; echo "action=none"; exit 0; fi
  fou_upgrade_family
  # Every package manager's output goes to the log; a failure shows its last lines.
  [ -d "${f%/*}" ] || mkdir -p "${f%/*}"
  : > "$fou_log"
  if [ -z "$kmiss" ]; then fou_upgrade_ip_only; fi
  before=$(fou_kernels)
  fou_upgrade_package
  after=$(fou_kernels)
  fou_upgrade_new
  fou_upgrade_bootloader
  if [ -n "$ipmiss" ]; then fou_iproute; fi
  fou_upgrade_reboot
}

# A field of os-release, unquoted (as HostPrep's kernel step reads it, kernel-prep.sh).
fou_osr() { sed -n "s/^$1=//p" "$fou_os_release" 2>/dev/null | head -n 1 | tr -d "\"'"; }

# Sets family (el7, el8, el9, debian, ubuntu) from os-release (ID, ID_LIKE, VERSION_ID) and lacks
# (what the kernel and `ip` lack, for messages); any other distribution, and an el host given an
# apt repository, is an error.
fou_upgrade_family() {
  os_id=$(fou_osr ID); os_like=$(fou_osr ID_LIKE); os_ver=$(fou_osr VERSION_ID)
  family=
  case " $os_id $os_like " in
    *" ubuntu "*) family=ubuntu ;;
    *" debian "*) family=debian ;;
    *" rhel "*|*" centos "*) case "$os_ver" in 7|7.*) family=el7 ;; 8|8.*) family=el8 ;; 9|9.*) family=el9 ;; esac ;;
  esac
  lacks=; [ -z "$kmiss" ] || lacks="Linux $rel lacks:$kmiss"; [ -z "$ipmiss" ] || lacks="${lacks:+$lacks; }$ipmiss is missing"
  if [ -z "$family" ]; then
    echo "fou-tunnel: $fou_at: $lacks, and the kernel upgrade knows Debian, Ubuntu, CentOS/RHEL 7 and RHEL-family 8/9 only; $fou_os_release says ID=${os_id:-none}, VERSION_ID=${os_ver:-none}: nothing was installed; install a kernel with fou (CONFIG_NET_FOU) by hand, or remove kernel.upgrade from the topology" >&2
    exit 1
  fi
  if [ -n "$fou_repository" ]; then
    case $family in el*)
      echo "fou-tunnel: $fou_at: kernel.repository is an apt source line, and this host is ${os_id} ${os_ver} (yum/dnf): nothing was installed; remove repository (ELRepo is used)" >&2; exit 1 ;;
    esac
  fi
}

# Runs a package manager (or a boot tool) with its output in the log; a failure exits with its
# status, the log's end on stderr.
fou_run() { echo "+ $*" >> "$fou_log"; "$@" >> "$fou_log" 2>&1 || { rc=$?; { echo "fou-tunnel: $fou_at: $* failed (exit $rc); the end of $fou_log:"; tail -n 20 "$fou_log"; } >&2; exit "$rc"; }; }

# fou_run of the rest unless rpm package $1 is installed: a re-run finds it there, no failure.
fou_ensure() { q=$1; shift; rpm -q "$q" >/dev/null 2>&1 || fou_run "$@"; }

# The kernel releases in the boot directory, oldest first (rescue images aside).
fou_kernels() {
  for k in "$fou_boot"/vmlinuz-*; do
    [ -e "$k" ] || continue
    k=${k##*/vmlinuz-}
    case $k in *rescue*) ;; *) echo "$k" ;; esac
  done | sort -V
}

# The kernel has fou and only `ip fou` is missing: a newer iproute2, `action=ip`, no reboot.
fou_upgrade_ip_only() {
  fou_iproute first
  fou_missing
  if [ -n "$ipmiss" ]; then echo "fou-tunnel: $fou_at: iproute2 was upgraded, and $ipmiss is still missing: install an iproute2 of 3.18 or newer" >&2; exit 1; fi
  echo "kernel=$rel"; echo "action=ip"; exit 0
}

# Installs a newer iproute2 (iproute on el). $1 = first: the run's first apt-get, which sets the
# frontend and updates the package lists.
fou_iproute() {
  case $family in
    el7) fou_run yum -y update iproute ;;
    el*) fou_run dnf install -y iproute ;;
    *)
      if [ "${1-}" = first ]; then export DEBIAN_FRONTEND=noninteractive; fou_run apt-get update; fi
      fou_run apt-get install -y iproute2 ;;
  esac
}

# Installs the kernel package of the host's family; pkg names it afterwards.
fou_upgrade_package() {
  case $family in
    el*) fou_install_elrepo ;;
    *) fou_install_apt ;;
  esac
}

# ELRepo's kernel-ml (or fou_package), as the guide installs it on CentOS 7: its key, its release
# package (kept when installed), the kernel; yum on el7, dnf (and ELRepo's second key) on el8/9.
fou_install_elrepo() {
  major=${family#el}; pm=dnf; [ "$major" != 7 ] || pm=yum
  fou_run rpm --import https://www.elrepo.org/RPM-GPG-KEY-elrepo.org
  [ "$major" = 7 ] || fou_run rpm --import https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org
  fou_ensure elrepo-release "$pm" install -y "https://www.elrepo.org/elrepo-release-$major.el$major.elrepo.noarch.rpm"
  pkg=${fou_package:-kernel-ml}
  fou_run "$pm" --enablerepo=elrepo-kernel install -y "$pkg"
}

# Debian and Ubuntu: fou_package, else bookworm's linux-image-6.12-<arch>, other Debian's
# linux-image-<arch>, Ubuntu's linux-generic-hwe-<VERSION_ID>; from the archive, or from
# fou_repository added first.
fou_install_apt() {
  export DEBIAN_FRONTEND=noninteractive
  pkg=$fou_package
  if [ -z "$pkg" ]; then
    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    case $family:$os_ver in
      debian:12|debian:12.*) pkg="linux-image-6.12-$arch" ;;
      debian:*) pkg="linux-image-$arch" ;;
      ubuntu:*) pkg="linux-generic-hwe-$os_ver" ;;
    esac
  fi
  if [ -n "$fou_repository" ]; then fou_apt_repository; fi
  fou_run apt-get update
  fou_run apt-get install -y "$pkg"
}

# Writes the repository line to fou_apt_list, and its key (when given) under the keyrings
# directory, which the line names by signed-by=.
fou_apt_repository() {
  [ -d "$fou_keyrings" ] || mkdir -p "$fou_keyrings"
  [ -d "$fou_sources_list" ] || mkdir -p "$fou_sources_list"
  line=$fou_repository
  if [ -n "$fou_key" ]; then fou_apt_key; fi
  printf '%s\n' "$line" > "$fou_apt_list"
}

# The key dearmored for apt when gpg is there; else armored, which apt reads as .asc. Sets line.
fou_apt_key() {
  if command -v gpg >/dev/null 2>&1; then
    printf '%s\n' "$fou_key" | gpg --dearmor > "$fou_key_gpg.tmp"; mv "$fou_key_gpg.tmp" "$fou_key_gpg"; chmod 0644 "$fou_key_gpg"; rm -f "$fou_key_asc"
    line=$fou_apt_gpg_line
  else
    printf '%s\n' "$fou_key" > "$fou_key_asc"; chmod 0644 "$fou_key_asc"; rm -f "$fou_key_gpg"
    line=$fou_apt_asc_line
  fi
}

# Sets new: the kernel the install added (the newest of those that were not there), else the
# newest; the running one is an error: nothing to reboot into.
fou_upgrade_new() {
  new=; for k in $after; do case "$nl$before$nl" in *"$nl$k$nl"*) ;; *) new=$k ;; esac; done
  if [ -z "$new" ]; then new=$(printf '%s\n' "$after" | tail -n 1); fi
  if [ -z "$new" ] || [ "$new" = "$rel" ]; then
    echo "fou-tunnel: $fou_at: $lacks, and after installing $pkg the newest kernel in $fou_boot is ${new:-none}, the running one: nothing to reboot into; choose a kernel package built with fou (kernel.package)" >&2; exit 1
  fi
}

# Makes new the default boot entry: grub2-set-default 0 and grub2-mkconfig on el7 (the guide's
# way), grubby --set-default on el8/9, update-grub on Debian and Ubuntu (the kernel package's own
# hook runs it too; a host without GRUB has none).
fou_upgrade_bootloader() {
  case $family in
    el7)
      fou_run grub2-set-default 0
      fou_run grub2-mkconfig -o "$fou_grub_cfg" ;;
    el*) fou_run grubby --set-default "$fou_boot/vmlinuz-$new" ;;
    *) if command -v update-grub >/dev/null 2>&1; then fou_run update-grub; fi ;;
  esac
}

# Records the pending reboot in the state file, schedules the reboot three seconds out (this
# command returns, and its session closes, first) and stops the SSH listener, so that no later
# dial lands on the old boot; the units' KillMode=process keeps this session.
fou_upgrade_reboot() {
  boot=$(cat "$fou_boot_id")
  printf 'pending=1\nold=%s\nbootId=%s\nnew=%s\n' "$rel" "$boot" "$new" > "$f.tmp"; mv "$f.tmp" "$f"
  if command -v systemd-run >/dev/null 2>&1 && systemd-run --on-active=3 --unit=fou-tunnel-reboot systemctl reboot >> "$fou_log" 2>&1; then :
  else nohup sh -c 'sleep 3; reboot' >/dev/null 2>&1 &
  fi
  if command -v systemctl >/dev/null 2>&1; then
    for u in ssh.socket ssh.service sshd.service; do if systemctl is-active --quiet "$u" 2>/dev/null; then systemctl stop "$u" >> "$fou_log" 2>&1 || true; fi; done
  fi
  echo "kernel=$rel"; echo "action=reboot"; echo "to=$new"; echo "bootId=$boot"
}
