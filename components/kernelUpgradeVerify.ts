import type { KernelPaths } from "./kernelUpgradePaths";
import { labelLine } from "./hostState";
import { sh } from "./shell";

/**
 * The verify step, after the reboot. A pending reboot in the state file: the boot id must have
 * changed, the running release must be the installed one, and fou (built on ip_tunnel) must
 * load; on the old kernel it fails with both releases and the default boot entry. It prints
 * `kernelBefore=`, `kernelAfter=`, `bootId=`. No reboot pending: the running kernel as both.
 */
export function kernelVerifyScript(paths: KernelPaths, label?: string): string {
    const p = paths;
    return [
        "set -eu",
        labelLine(label),
        sh`f=${p.state}`,
        sh`read -r rel < ${p.kernelRelease}`,
        sh`boot=$(cat ${p.bootId})`,
        "pending=; old=; new=; oldboot=",
        "if [ -f \"$f\" ]; then",
        "  while IFS='=' read -r k v; do",
        '    case $k in pending) pending=$v ;; old) old=$v ;; new) new=$v ;; bootId) oldboot=$v ;; esac',
        '  done < "$f"',
        "fi",
        "default_entry() {",
        "  e=",
        "  if command -v grub-editenv >/dev/null 2>&1; then e=$(grub-editenv list 2>/dev/null | sed -n 's/^saved_entry=//p'); fi",
        '  if [ -n "$e" ]; then echo "saved_entry=$e (grub-editenv list)"; return; fi',
        "  if command -v grubby >/dev/null 2>&1; then e=$(grubby --default-kernel 2>/dev/null || true); fi",
        '  if [ -n "$e" ]; then echo "$e (grubby --default-kernel)"; return; fi',
        sh`  e=$(grep ^GRUB_DEFAULT ${p.defaultGrub} 2>/dev/null || true)`,
        `  echo "\${e:-unknown} (${p.defaultGrub})"`,
        "}",
        'fail() { echo "fou-tunnel: $fou_at: $1" >&2; exit 1; }',
        'if [ "$pending" = 1 ]; then',
        '  [ "$boot" != "$oldboot" ] || fail "the host has not rebooted (boot id $boot, as before the install): the reboot the install scheduled did not happen; reboot it into $new"',
        '  [ "$rel" = "$new" ] || fail "the host rebooted into Linux $rel, not the installed $new (it ran $old before); the default boot entry: $(default_entry)"',
        '  deps=$(modinfo --field=depends fou 2>/dev/null) || fail "Linux $rel has no fou module"',
        '  fn=$(modinfo --field=filename fou 2>/dev/null || true)',
        '  case ",$deps," in *,ip_tunnel,*) ;; *) [ "$fn" = "(builtin)" ] || fail "the fou module of Linux $rel does not depend on ip_tunnel (depends: $deps)" ;; esac',
        // Loaded to prove it loads; unloaded again when this step loaded it (HostPrep loads and counts it).
        sh`  if [ -d ${p.sysModule + "/fou"} ]; then modprobe fou || fail "modprobe fou failed on Linux $rel"`,
        '  else modprobe fou || fail "modprobe fou failed on Linux $rel"; modprobe -r fou 2>/dev/null || true',
        "  fi",
        '  printf \'pending=0\\nold=%s\\nbootId=%s\\nnew=%s\\n\' "$old" "$oldboot" "$new" > "$f.tmp"; mv "$f.tmp" "$f"',
        '  before=$old',
        'elif [ "$pending" = 0 ] && [ "$rel" = "$new" ]; then',
        '  before=$old',
        "else",
        '  before=$rel',
        "fi",
        'echo "kernelBefore=$before"; echo "kernelAfter=$rel"; echo "bootId=$boot"',
    ].join("\n");
}
