# The verify step of KernelUpgrade (components/kernelUpgradeVerify.ts), after the reboot the
# install scheduled. The step sets, quoted: f (the install's state file: pending=, old=, bootId=,
# new=), fou_at (host and step, for messages), and the host's paths: fou_kernel_release,
# fou_boot_id, fou_sys_module, fou_default_grub. Tests point the paths at a fake host.
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step

# The create: with a reboot pending, the new boot is checked (fou_verify_boot) and recorded; it
# prints kernelBefore=, kernelAfter= and bootId=. No reboot pending: the running kernel as both.
fou_verify_create() {
  read -r rel < "$fou_kernel_release"
  boot=$(cat "$fou_boot_id")
  pending=; old=; new=; oldboot=
  if [ -f "$f" ]; then
    while IFS='=' read -r k v; do
      case $k in pending) pending=$v ;; old) old=$v ;; new) new=$v ;; bootId) oldboot=$v ;; esac
    done < "$f"
  fi
  if [ "$pending" = 1 ]; then
    fou_verify_boot
    before=$old
  elif [ "$pending" = 0 ] && [ "$rel" = "$new" ]; then
    before=$old
  else
    before=$rel
  fi
  echo "kernelBefore=$before"; echo "kernelAfter=$rel"; echo "bootId=$boot"
}

# The boot id changed, the running release is the installed one, and fou (built on ip_tunnel)
# loads; on the old kernel, a failure with both releases and the default boot entry. Then the
# state file says the reboot is done.
fou_verify_boot() {
  [ "$boot" != "$oldboot" ] || fou_fail "the host has not rebooted (boot id $boot, as before the install): the reboot the install scheduled did not happen; reboot it into $new"
  [ "$rel" = "$new" ] || fou_fail "the host rebooted into Linux $rel, not the installed $new (it ran $old before); the default boot entry: $(fou_default_entry)"
  deps=$(modinfo --field=depends fou 2>/dev/null) || fou_fail "Linux $rel has no fou module"
  fn=$(modinfo --field=filename fou 2>/dev/null || true)
  case ",$deps," in *,ip_tunnel,*) ;; *) [ "$fn" = "(builtin)" ] || fou_fail "the fou module of Linux $rel does not depend on ip_tunnel (depends: $deps)" ;; esac
  # Loaded to prove it loads; unloaded again when this step loaded it (HostPrep loads and counts it).
  if [ -d "$fou_sys_module/fou" ]; then modprobe fou || fou_fail "modprobe fou failed on Linux $rel"
  else modprobe fou || fou_fail "modprobe fou failed on Linux $rel"; modprobe -r fou 2>/dev/null || true
  fi
  printf 'pending=0\nold=%s\nbootId=%s\nnew=%s\n' "$old" "$oldboot" "$new" > "$f.tmp"; mv "$f.tmp" "$f"
}

# Fails the step with $1, naming the host and step.
fou_fail() { echo "fou-tunnel: $fou_at: $1" >&2; exit 1; }

# The default boot entry, and where it was read: grub-editenv's saved_entry, grubby's default
# kernel, or GRUB_DEFAULT in GRUB's settings.
fou_default_entry() {
  e=
  if command -v grub-editenv >/dev/null 2>&1; then e=$(grub-editenv list 2>/dev/null | sed -n 's/^saved_entry=//p'); fi
  if [ -n "$e" ]; then echo "saved_entry=$e (grub-editenv list)"; return; fi
  if command -v grubby >/dev/null 2>&1; then e=$(grubby --default-kernel 2>/dev/null || true); fi
  if [ -n "$e" ]; then echo "$e (grubby --default-kernel)"; return; fi
  e=$(grep ^GRUB_DEFAULT "$fou_default_grub" 2>/dev/null || true)
  echo "${e:-unknown} ($fou_default_grub)"
}
