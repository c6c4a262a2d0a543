import type { CommandScripts } from "./host";
import { kernelCheckLines } from "./hostPrepChecks";
import { expect, labelLine, removeEmptyStateDirs, STATE_ROOT, undoLibrary, undoOnFailure } from "./hostState";
import { script, sh, shq } from "./shell";

/**
 * Modules a stack loaded that were still in use when its kernel step was deleted (another stack's
 * FOU port needs fou): host-wide, so the last kernel step to go, of whichever stack, unloads them
 * once nothing uses them, and the host ends as it was before any stack.
 */
const HANDED_OVER = `${STATE_ROOT}/handed-over.modules`;

/**
 * What still needs module `$1` on the host: a FOU port or an encapsulating link (fou), a tunnel
 * link of its kind other than the module's own fallback device (`tunl0`, `sit0`, `gre0`…), or
 * another stack that loaded it too. Unloading `ipip`, `sit`, `ip_gre` or `fou` deletes every link
 * of that kind and every FOU port, whoever made them, and such links hold no module reference
 * (measured on Debian's 6.1), so the refcount cannot tell.
 */
const MODULE_IN_USE = [
    "in_use() {",
    "  case $1 in",
    '    fou) [ -z "$(ip fou show 2>/dev/null)" ] || return 0',
    "         ip -d -o link show 2>/dev/null | grep -Eq ' encap (fou|gue) ' && return 0 ;;",
    "    ipip) kinds=ipip; own=tunl0 ;;",
    "    sit) kinds=sit; own=sit0 ;;",
    "    ip_gre) kinds='gre gretap erspan'; own='gre0 gretap0 erspan0' ;;",
    "  esac",
    '  if [ "$1" != fou ]; then',
    "    for k in $kinds; do",
    `      for l in $(ip -o link show type "$k" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do`,
    '        case " $own " in *" $l "*) ;; *) return 0 ;; esac',
    "      done",
    "    done",
    "  fi",
    `  for g in ${STATE_ROOT}/*/*.modules; do`,
    '    [ "$g" != "$f" ] && [ -f "$g" ] && grep -qx "$1" "$g" && return 0',
    "  done",
    "  return 1",
    "}",
    // Unloads, newest first, what this resource loaded and nothing needs; the rest stays listed.
    "unload_unused() {",
    '  rev=; while read -r m; do rev="$m $rev"; done < "$f"',
    '  keep=; for m in $rev; do',
    '    case " $* " in *" $m "*) keep="$m $keep"; continue ;; esac',
    '    if [ -d "/sys/module/$m" ] && in_use "$m"; then keep="$m $keep"; continue; fi',
    '    if [ -d "/sys/module/$m" ]; then modprobe -r "$m"; fi',
    "  done",
    '  for m in $keep; do printf "%s\\n" "$m"; done > "$f.tmp"; mv "$f.tmp" "$f"',
    "}",
].join("\n");

/**
 * Checks the kernel can do FOU ({@link kernelCheckLines}: ≥ 3.18, the modules present, fou built
 * on ip_tunnel, `ip fou`) and loads the modules: `uname -r; modinfo fou; ip fou help; modprobe
 * fou; modprobe ipip`. The modules it loaded are listed in `stateFile` on the host; a run with a
 * shorter list, and delete, unload those of them nothing uses any more ({@link MODULE_IN_USE}).
 * Create and update are the same script, so a changed module list updates in place and never
 * replaces (a replace would unload what live tunnels use). A create that fails once it has
 * loaded a module unloads what it loaded (unless something uses it) and forgets it: Pulumi
 * records nothing for a failed create. LABEL names the host in messages.
 */
export function kernelScripts(modules: readonly string[], stateFile: string, label?: string): CommandScripts {
    const list = modules.map((m) => sh`${m}`).join(" ");
    return {
        library: undoLibrary(),
        create: script(...kernelCheckLines(list), ...loadLines(modules, list, stateFile, label)),
        delete: unloadScript(stateFile),
    };
}

/**
 * Loads each module not loaded yet and lists it in the state file, then unloads what an earlier
 * run listed that LIST no longer holds and nothing uses; prints `kernel=` and `modules=`.
 */
function loadLines(modules: readonly string[], list: string, stateFile: string, label?: string): string[] {
    return [
        sh`f=${stateFile}`,
        labelLine(label),
        MODULE_IN_USE,
        'fou_new=; fou_made=; [ -e "$f" ] || fou_made=1',
        ...undoOnFailure({
            undo: [
                // Newest first: what this run loaded and nothing else needs.
                'for m in $fou_new; do if [ -d "/sys/module/$m" ] && ! in_use "$m"; then modprobe -r "$m"; fi; done',
                'if [ -f "$f" ]; then while read -r x; do case " $fou_new " in *" $x "*) ;; *) printf \'%s\\n\' "$x" ;; esac; done < "$f" > "$f.tmp"; mv "$f.tmp" "$f"; fi',
                'if [ -n "$fou_made" ] && [ ! -s "$f" ]; then rm -f "$f"; fi',
                removeEmptyStateDirs(stateFile),
            ],
        }),
        '[ -d "${f%/*}" ] || mkdir -p "${f%/*}"; [ -e "$f" ] || : > "$f"',
        'listed() { while read -r x; do [ "$x" != "$1" ] || return 0; done < "$f"; return 1; }',
        `for m in ${list}; do`,
        // A failing modprobe's words behind the host and step, as every step's reason is printed.
        '  if [ ! -d "/sys/module/$m" ]; then',
        '    fou_changing=1; fou_new="$m $fou_new"',
        '    if ! fou_err=$(modprobe "$m" 2>&1); then printf \'fou-tunnel: %s: %s\\n\' "$fou_at" "$fou_err" >&2; exit 1; fi',
        '    listed "$m" || echo "$m" >> "$f"',
        "  fi",
        "done",
        `unload_unused ${list}`,
        'echo "kernel=$rel"',
        `echo ${shq(`modules=${modules.join(" ")}`)}`,
    ];
}

/** The delete: unloads what the step loaded and nothing uses; hands the rest over to the host-wide list. */
function unloadScript(stateFile: string): string {
    return script(
        sh`f=${stateFile}; h=${HANDED_OVER}`,
        MODULE_IN_USE,
        // What it loaded and something still uses (another stack's port, say) is handed over.
        'if [ -f "$f" ]; then unload_unused; cat "$f" >> "$h"; rm -f "$f"; fi',
        'if [ -f "$h" ]; then',
        // Module names are words ([a-z0-9_]): split on purpose.
        "  keep=",
        "  # shellcheck disable=SC2013",
        '  for m in $(sort -u "$h"); do',
        '    [ -d "/sys/module/$m" ] || continue',
        '    if in_use "$m" || ! modprobe -r "$m"; then keep="$keep $m"; fi',
        "  done",
        "  # shellcheck disable=SC2086",
        '  if [ -n "$keep" ]; then printf "%s\\n" $keep > "$h.tmp"; mv "$h.tmp" "$h"; else rm -f "$h"; fi',
        "fi",
        removeEmptyStateDirs(stateFile),
    );
}

/** The drift check of the kernel step: every module is loaded. */
export function modulesLoaded(modules: readonly string[]): string {
    return modules.map((m) => expect(sh`[ -d /sys/module/${m} ]`, `module ${m} is not loaded`)).join("\n");
}
