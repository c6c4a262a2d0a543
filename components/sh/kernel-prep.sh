# The kernel step of HostPrep (components/hostPrepModules.ts): the guide's `uname -r; modinfo
# fou; ip fou help; modprobe fou; modprobe ipip`, with every problem named before anything
# changes, and the modules it loaded unloaded again when nothing uses them. The step sets,
# quoted: fou_modules (module names, words of [a-z0-9_], in load order), f (the step's list of
# the modules it loaded), fou_at (host and step, for messages), fou_state_root
# (/var/lib/fou-tunnel), fou_handed_over (the host-wide list of modules a deleted step left in
# use), fou_kernel_release (/proc/sys/kernel/osrelease), fou_os_release (/etc/os-release),
# fou_lib_modules (/lib/modules), fou_sys_module (/sys/module). Tests point the paths at a fake.
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step

# Sets kfix and ipfix: how to get a kernel with fou, and an iproute2 with `ip fou`, on the
# distribution os-release names (empty where it is not one of these). CentOS/RHEL 7 ship Linux
# 3.10 without fou: ELRepo's mainline kernel (kernel-ml) is the guide's fix, and iproute from 7.5
# on (4.11) has `ip fou`. Debian and Ubuntu: their current kernel packages have fou.
fou_distribution_fix() {
  osr() { sed -n "s/^$1=//p" "$fou_os_release" 2>/dev/null | head -n 1 | tr -d "\"'"; }
  os_id=$(osr ID); os_like=$(osr ID_LIKE); os_ver=$(osr VERSION_ID); os_name=$(osr PRETTY_NAME); os_name=${os_name:-$os_id}
  kfix=; ipfix=
  case " $os_id $os_like " in
    *" ubuntu "*)
      kfix="on $os_name: apt-get update && apt-get install linux-generic (cloud kernels keep fou in linux-modules-extra-$rel), then reboot into it"
      ipfix="on $os_name: apt-get install iproute2" ;;
    *" debian "*)
      kfix="on $os_name: apt-get update && apt-get install linux-image-$(dpkg --print-architecture 2>/dev/null || echo amd64) (Debian's current kernel, which has fou), then reboot into it"
      ipfix="on $os_name: apt-get install iproute2" ;;
    *" rhel "*|*" centos "*|*" fedora "*)
      case "$os_ver" in
        7|7.*)
          kfix="on $os_name (Linux 3.10 has no fou): install ELRepo's mainline kernel: rpm --import https://www.elrepo.org/RPM-GPG-KEY-elrepo.org; yum install https://www.elrepo.org/elrepo-release-7.el7.elrepo.noarch.rpm; yum --enablerepo=elrepo-kernel install kernel-ml; grub2-set-default 0; then reboot"
          ipfix="on $os_name: yum update iproute (7.5 and later ship iproute 4.11, which has ip fou), or build iproute2 4.x from kernel.org and install it" ;;
        *)
          kfix="on $os_name: dnf install kernel-modules-extra (and the newest kernel), then reboot"
          ipfix="on $os_name: dnf install iproute" ;;
      esac ;;
  esac
}

# One problem: counted, and printed (naming the host) unless the first, quiet pass runs.
fou_say() { bad=1; if [ -z "$quiet" ]; then echo "fou-tunnel: $host$1" >&2; fi; }

# The kernel's problems: its release (3.18 or newer), kmod, each module, fou built on ip_tunnel.
fou_kernel_problems() {
  major=${rel%%.*}; rest=${rel#*.}; minor=${rest%%[!0-9]*}
  if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 18 ]; }; then
    fou_say " runs Linux $rel, which has no FOU support (needs 3.18 or newer): upgrade the kernel and reboot${kfix:+; $kfix}"
    return 0
  fi
  if ! command -v modprobe >/dev/null 2>&1 || ! command -v modinfo >/dev/null 2>&1; then
    fou_say " has no modprobe or modinfo: install kmod"
    return 0
  fi
  # fou's modinfo once, for whether it is there and for its fields (filename, depends).
  nl='
'
  if info=$(modinfo fou 2>/dev/null); then info="$nl$info$nl"; else info=; fi
  # shellcheck disable=SC2086 # module names are words: split on purpose
  for m in $fou_modules; do
    if [ "$m" = fou ]; then [ -z "$info" ] || continue; elif modinfo "$m" >/dev/null 2>&1; then continue; fi
    if [ ! -d "$fou_lib_modules/$rel" ]; then
      fou_say " runs Linux $rel, whose modules are not installed (no /lib/modules/$rel: upgraded without a reboot?): reboot into the installed kernel${kfix:+, or $kfix}"; break
    fi
    fou_say " runs Linux $rel without the $m module: install a kernel built with it (fou needs CONFIG_NET_FOU) and reboot${kfix:+; $kfix}"
  done
  fou_field filename
  if [ -n "$v" ] && [ "$v" != "(builtin)" ]; then
    fou_field depends
    case ",$v," in
      *,ip_tunnel,*)
        if ! modinfo ip_tunnel >/dev/null 2>&1; then
          fou_say ": Linux $rel lacks the ip_tunnel module that fou is built on: its modules are incomplete; reinstall the kernel package${kfix:+; $kfix}"
        fi ;;
      *)
        fou_say ": the fou module of Linux $rel does not depend on ip_tunnel; this kernel cannot encapsulate tunnels in FOU${kfix:+; $kfix}" ;;
    esac
  fi
}

# Sets v to one field of fou's modinfo: the rest of the line after `<field>:`, unpadded.
fou_field() {
  v=${info#*"$nl$1:"}
  if [ "$v" = "$info" ]; then v=; else v=${v%%"$nl"*}; v=${v#"${v%%[! 	]*}"}; fi
}

# iproute2's problems: `ip` there, with `ip fou` and link encapsulation (iproute2 before 3.18 has
# no `ip fou`: 'Object "fou" is unknown', and no `encap` for links).
fou_ip_problems() {
  if ! command -v ip >/dev/null 2>&1; then
    fou_say " has no ip command: install iproute2${ipfix:+; $ipfix}"
    return 0
  fi
  case "$(ip fou help 2>&1)" in
    *"fou add"*) case "$(ip link help ipip 2>&1)" in *encap*) return 0 ;; esac ;;
  esac
  fou_say ": its ip ($(ip -V 2>&1 | head -n 1)) has no ip fou or no link encapsulation: upgrade iproute2 to 3.18 or newer${ipfix:+; $ipfix}"
}

# The checks, before anything changes: once quietly; only a host that fails them pays for the
# messages: every problem, each naming the host, its kernel and the fix for its distribution.
fou_kernel_check() {
  # uname -r, read by the shell (no process).
  read -r rel < "$fou_kernel_release"
  host=; kfix=; ipfix=; quiet=1; bad=0
  fou_kernel_problems; fou_ip_problems
  if [ "$bad" != 0 ]; then
    host=$(hostname)
    fou_distribution_fix
    quiet=; fou_kernel_problems; fou_ip_problems; exit 1
  fi
}

# What still needs module $1 on the host: a FOU port or an encapsulating link (fou), a tunnel link
# of its kind other than the module's own fallback device (tunl0, sit0, gre0…), or another stack
# that loaded it too. Unloading ipip, sit, ip_gre or fou deletes every link of that kind and
# every FOU port, whoever made them, and such links hold no module reference (measured on
# Debian's 6.1), so the refcount cannot tell. fou6 (IPv6 underlays) is as fou: unloading it
# unloads fou too, and every port with it.
fou_in_use() {
  kinds=
  case $1 in
    fou|fou6) [ -z "$(ip fou show 2>/dev/null)" ] || return 0
         ip -d -o link show 2>/dev/null | grep -Eq ' encap (fou|gue) ' && return 0 ;;
    ipip) kinds=ipip; own=tunl0 ;;
    sit) kinds=sit; own=sit0 ;;
    ip_gre) kinds='gre gretap erspan'; own='gre0 gretap0 erspan0' ;;
    ip6_tunnel) kinds=ip6tnl; own=ip6tnl0 ;;
    ip6_gre) kinds='ip6gre ip6gretap ip6erspan'; own=ip6gre0 ;;
  esac
  if [ -n "$kinds" ]; then
    for k in $kinds; do
      for l in $(ip -o link show type "$k" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
        case " $own " in *" $l "*) ;; *) return 0 ;; esac
      done
    done
  fi
  for g in "$fou_state_root"/*/*.modules; do
    [ "$g" != "$f" ] && [ -f "$g" ] && grep -qx "$1" "$g" && return 0
  done
  return 1
}

# Unloads, newest first, what this step loaded that is not among its arguments and nothing
# needs; the rest stays listed. A module another module still holds (a dependency shared with
# something else) is not unloaded by modprobe -r: it stays listed too.
fou_unload_unused() {
  rev=; while read -r m; do rev="$m $rev"; done < "$f"
  keep=; for m in $rev; do
    case " $* " in *" $m "*) keep="$m $keep"; continue ;; esac
    if [ -d "$fou_sys_module/$m" ] && fou_in_use "$m"; then keep="$m $keep"; continue; fi
    if [ -d "$fou_sys_module/$m" ] && ! modprobe -r "$m" 2>/dev/null; then keep="$m $keep"; fi
  done
  for m in $keep; do printf '%s\n' "$m"; done > "$f.tmp"; mv "$f.tmp" "$f"
}

# A failed create unloads what this run loaded (newest first) and nothing else needs, and
# forgets it: Pulumi records nothing for a failed create.
fou_kernel_put_back() {
  for m in $fou_new; do if [ -d "$fou_sys_module/$m" ] && ! fou_in_use "$m"; then modprobe -r "$m" 2>/dev/null || true; fi; done
  if [ -f "$f" ]; then
    while read -r x; do case " $fou_new " in *" $x "*) ;; *) printf '%s\n' "$x" ;; esac; done < "$f" > "$f.tmp"
    mv "$f.tmp" "$f"
  fi
  if [ -n "$fou_made" ] && [ ! -s "$f" ]; then rm -f "$f"; fi
  rmdir "${f%/*}" 2>/dev/null || true; rmdir "$fou_state_root" 2>/dev/null || true
}

# The create: checks, loads each module not loaded yet and lists it, unloads what an earlier run
# listed that fou_modules no longer holds and nothing uses; prints kernel= and modules=.
fou_kernel_create() {
  fou_kernel_check
  fou_new=; fou_made=; [ -e "$f" ] || fou_made=1
  fou_guard fou_kernel_put_back
  [ -d "${f%/*}" ] || mkdir -p "${f%/*}"; [ -e "$f" ] || : > "$f"
  # shellcheck disable=SC2086 # module names are words: split on purpose
  for m in $fou_modules; do
    if [ ! -d "$fou_sys_module/$m" ]; then
      # shellcheck disable=SC2034 # read by fou_undo (undo.sh)
      fou_changing=1; fou_new="$m $fou_new"
      fou_before=$(fou_loaded_now)
      # A failing modprobe's words behind the host and step, as every step's reason is printed.
      if ! fou_err=$(modprobe "$m" 2>&1); then printf 'fou-tunnel: %s: %s\n' "$fou_at" "$fou_err" >&2; exit 1; fi
      # What came with it (udp_tunnel, tunnel6, …) is listed ahead of it: unloading $m goes
      # first and takes its own dependencies; theirs (fou6 pulls in fou, which pulls in
      # udp_tunnel) are left to these lines.
      for d in $(fou_loaded_now); do
        case " $fou_before $m " in *" $d "*) ;; *) fou_new="$fou_new $d"; fou_listed "$d" || echo "$d" >> "$f" ;; esac
      done
      fou_listed "$m" || echo "$m" >> "$f"
    fi
  done
  # shellcheck disable=SC2086
  fou_unload_unused $fou_modules
  echo "kernel=$rel"
  echo "modules=$fou_modules"
}

# The modules loaded now, built in or not: a directory each under /sys/module.
fou_loaded_now() { for d in "$fou_sys_module"/*; do if [ -d "$d" ]; then printf '%s ' "${d##*/}"; fi; done; }

# Succeeds when the step's list names module $1.
fou_listed() { while read -r x; do [ "$x" != "$1" ] || return 0; done < "$f"; return 1; }

# The delete: unloads what the step loaded and nothing uses; what something still uses (another
# stack's port, say) is handed over to the host-wide list, which the last delete of any stack
# empties once nothing uses them.
fou_kernel_delete() {
  if [ -f "$f" ]; then fou_unload_unused; cat "$f" >> "$fou_handed_over"; rm -f "$f"; fi
  if [ -f "$fou_handed_over" ]; then
    keep=
    # shellcheck disable=SC2013 # module names are words, one a line
    for m in $(sort -u "$fou_handed_over"); do
      [ -d "$fou_sys_module/$m" ] || continue
      if fou_in_use "$m" || ! modprobe -r "$m"; then keep="$keep $m"; fi
    done
    # shellcheck disable=SC2086
    if [ -n "$keep" ]; then printf '%s\n' $keep > "$fou_handed_over.tmp"; mv "$fou_handed_over.tmp" "$fou_handed_over"; else rm -f "$fou_handed_over"; fi
  fi
  rmdir "${f%/*}" 2>/dev/null || true; rmdir "$fou_state_root" 2>/dev/null || true
}
