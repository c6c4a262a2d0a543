# What the running kernel and `ip` lack for the tunnels: the check that starts KernelUpgrade's
# install (components/kernelUpgradeInstall.ts) and its drift check (kernelUpgradeFou.ts). The step
# sets, quoted: fou_modules (the tunnels' module names, words of [a-z0-9_]) and
# fou_kernel_release (/proc/sys/kernel/osrelease). Tests point the path at a fake.
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step

# Sets kmiss (what the kernel lacks: fou, fou built on ip_tunnel, ip_tunnel, a tunnel module,
# each after a space) and ipmiss (`ip`, or `ip fou`; empty when both are there).
fou_missing() {
  kmiss=
  if fn=$(modinfo --field=filename fou 2>/dev/null) && [ -n "$fn" ]; then
    if [ "$fn" != "(builtin)" ]; then
      deps=$(modinfo --field=depends fou 2>/dev/null || true)
      case ",$deps," in
        *,ip_tunnel,*) modinfo ip_tunnel >/dev/null 2>&1 || kmiss="$kmiss ip_tunnel" ;;
        *) kmiss="$kmiss fou-on-ip_tunnel" ;;
      esac
    fi
  else
    kmiss="$kmiss fou"
  fi
  for m in $fou_modules; do
    [ "$m" = fou ] || modinfo "$m" >/dev/null 2>&1 || kmiss="$kmiss $m"
  done
  ipmiss=
  if ! command -v ip >/dev/null 2>&1; then
    ipmiss=ip
  else
    case "$(ip fou help 2>&1)" in *'fou add'*) ;; *) ipmiss='ip fou' ;; esac
  fi
}

# The drift check: fou (with the tunnels' modules and `ip fou`) usable on the running kernel, or
# what is missing on stdout and exit 1.
fou_usable_check() {
  read -r rel < "$fou_kernel_release"
  fou_missing
  if [ -n "$kmiss" ]; then echo "Linux $rel lacks:$kmiss (booted into an old kernel?)"; exit 1; fi
  if [ -n "$ipmiss" ]; then echo "$ipmiss is missing"; exit 1; fi
}
