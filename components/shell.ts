/**
 * The one way values reach a remote shell: every interpolated value is single-quoted.
 *
 * `sh\`ip link del dev ${name}\`` gives `ip link del dev 'ftok2'`; a hostile value such as
 * `x; rm -rf /` stays one literal argument. Script text written in the template itself is
 * trusted; everything interpolated is data.
 *
 * Host scripts prefer the shell's builtins (`read`, `case`, `printf`, `[`) to processes where
 * either would do: on a slow host (an emulated VM, a small board) each process a script starts
 * costs ~50 ms, and every step runs its check before and after it applies.
 */

/** Quotes one value for a POSIX shell: `it's` → `'it'\''s'`. */
export function shq(value: string | number): string {
    return "'" + String(value).replace(/'/g, "'\\''") + "'";
}

/** Template tag that quotes every interpolated value with {@link shq}. */
export function sh(strings: TemplateStringsArray, ...values: (string | number)[]): string {
    let out = strings[0];
    values.forEach((v, i) => {
        out += shq(v) + strings[i + 1];
    });
    return out;
}

/** Joins script lines under `set -eu` so the first failing step fails the command. */
export function script(...lines: string[]): string {
    return ["set -eu", ...lines].join("\n");
}

/** The running kernel's release, as `uname -r` prints it, read by the shell with no process. */
export const KERNEL_RELEASE = "/proc/sys/kernel/osrelease";

/**
 * A shell test that FILE (a /proc or /sys value) holds VALUE; a missing file is false, quietly.
 * Read with `cat`, not the shell's `read`: dash and busybox `sh` read a byte at a time, and an
 * integer sysctl (`ip_forward`, `rp_filter`) answers only a read at offset 0, so their `read`
 * gets the first digit and fails.
 */
export function fileHolds(file: string, value: string | number): string {
    return `[ "$(cat ${shq(file)} 2>/dev/null)" = ${shq(value)} ]`;
}

/**
 * A shell test that SUBJECT (a word such as `"$d"`) contains TEXT (or any of TEXTS), told by
 * `case` (a builtin) rather than `printf | grep -F`.
 */
export function contains(subject: string, ...texts: [string, ...string[]]): string {
    return `case ${subject} in ${texts.map((t) => `*${shq(t)}*`).join("|")}) ;; *) false ;; esac`;
}

/**
 * A shell test that some line COMMAND prints starts with exactly WORDS (leading blanks aside),
 * compared by the shell's `read` rather than `grep -E '^ *w1 w2 '`: `ip fou show`'s `port 5555
 * ipproto 4`, the kind line `ipip remote …` of `ip -d link show`. 5555 is not 55555, ipproto 4
 * is not 41: words are compared whole.
 */
export function someLineStarts(command: string, words: (string | number)[]): string {
    const names = words.map((_, i) => `w${i + 1}`);
    const joined = names.map((n) => `$${n}`).join(" ");
    return `${command} | (while read -r ${names.join(" ")} _; do [ "${joined}" = ${shq(words.join(" "))} ] && exit 0; done; exit 1)`;
}
