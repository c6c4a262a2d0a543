import type { KernelPaths } from "./kernelUpgradePaths";
import { sh } from "./shell";

/**
 * Shell functions shared by the install step and its drift check: `fou_missing` sets `kmiss`
 * (what the running kernel lacks: fou, fou built on ip_tunnel, ip_tunnel, a tunnel module) and
 * `ipmiss` (`ip`, or `ip fou`); `rel` must hold the running release.
 */
export function fouMissing(modules: readonly string[]): string {
    const others = modules.filter((m) => m !== "fou");
    // Names of a-z, 0-9 and _ only, written unquoted (one quoted word would read as a mistake).
    const bad = others.find((m) => !/^[a-z0-9_]{1,55}$/.test(m));
    if (bad !== undefined) throw new Error(`kernel upgrade: module name ${JSON.stringify(bad)} is not valid`);
    return [
        "fou_missing() {",
        "  kmiss=",
        '  if fn=$(modinfo --field=filename fou 2>/dev/null) && [ -n "$fn" ]; then',
        '    if [ "$fn" != "(builtin)" ]; then',
        '      deps=$(modinfo --field=depends fou 2>/dev/null || true)',
        '      case ",$deps," in',
        '        *,ip_tunnel,*) modinfo ip_tunnel >/dev/null 2>&1 || kmiss="$kmiss ip_tunnel" ;;',
        '        *) kmiss="$kmiss fou-on-ip_tunnel" ;;',
        "      esac",
        "    fi",
        "  else",
        '    kmiss="$kmiss fou"',
        "  fi",
        ...others.map((m) => `  modinfo ${m} >/dev/null 2>&1 || kmiss="$kmiss ${m}"`),
        "  ipmiss=",
        "  if ! command -v ip >/dev/null 2>&1; then",
        "    ipmiss=ip",
        "  else",
        "    case \"$(ip fou help 2>&1)\" in *'fou add'*) ;; *) ipmiss='ip fou' ;; esac",
        "  fi",
        "}",
    ].join("\n");
}

/** The drift check of the install step: fou (and the tunnels' modules, and `ip fou`) usable on the running kernel. */
export function fouUsableCheck(modules: readonly string[], paths: Pick<KernelPaths, "kernelRelease">): string {
    return [
        sh`read -r rel < ${paths.kernelRelease}`,
        fouMissing(modules),
        "fou_missing",
        'if [ -n "$kmiss" ]; then echo "Linux $rel lacks:$kmiss (booted into an old kernel?)"; exit 1; fi',
        'if [ -n "$ipmiss" ]; then echo "$ipmiss is missing"; exit 1; fi',
    ].join("\n");
}
