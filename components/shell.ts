/**
 * The one way values reach a remote shell: every interpolated value is single-quoted.
 *
 * `sh\`ip link del dev ${name}\`` gives `ip link del dev 'ftok2'`; a hostile value such as
 * `x; rm -rf /` stays one literal argument. Script text written in the template itself is
 * trusted; everything interpolated is data.
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

/**
 * A line that prints a fresh identifier. Create scripts end with it so that resources built on
 * top (an address on a link, a route via an address) can list it in their triggers and are
 * replaced whenever the object under them is recreated.
 */
export const printInstanceId = 'echo "instance=$(cat /proc/sys/kernel/random/uuid)"';

/**
 * A shell test that SUBJECT (a word such as `"$d"`) contains TEXT, as `case` does it rather than
 * `printf | grep -F`: under TCG every process a script starts costs ~50 ms, and a step's check
 * runs several of these before and after it applies.
 */
export function contains(subject: string, text: string): string {
    return `case ${subject} in *${shq(text)}*) ;; *) false ;; esac`;
}
