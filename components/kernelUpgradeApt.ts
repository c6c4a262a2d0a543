import type { KernelPaths } from "./kernelUpgradePaths";
import { sh } from "./shell";

/** The file names under the keyrings and sources directories. */
export const APT_NAME = "fou-tunnel-kernel";

/**
 * The repository line with `signed-by=` naming KEYFILE: an existing signed-by option is
 * replaced, other options are kept, and a line without options gets `[signed-by=KEYFILE]`.
 */
export function withSignedBy(line: string, keyFile: string): string {
    const m = /^(deb(?:-src)?)\s+(?:\[([^\]]*)\]\s+)?(.*)$/.exec(line.trim());
    if (!m) return line;
    const options = (m[2] ?? "").split(/\s+/).filter((o) => o !== "" && !/^signed-by=/.test(o));
    return `${m[1]} [${[...options, `signed-by=${keyFile}`].join(" ")}] ${m[3]}`;
}

/**
 * Lines of the Debian/Ubuntu branch that add REPOSITORY (an apt source line) before the install:
 * `/etc/apt/sources.list.d/fou-tunnel-kernel.list`, and KEY (ASCII-armored) under the keyrings
 * directory, which the line names as `signed-by=`. Nothing without a repository.
 */
export function aptRepositoryLines(repository: string | undefined, rawKey: string | undefined, p: KernelPaths): string[] {
    if (repository === undefined) return [];
    const key = rawKey?.trim();
    const gpgFile = `${p.keyrings}/${APT_NAME}.gpg`;
    const ascFile = `${p.keyrings}/${APT_NAME}.asc`;
    const listFile = `${p.sourcesList}/${APT_NAME}.list`;
    const lines = key === undefined
        ? { gpg: repository.trim(), asc: repository.trim() }
        : { gpg: withSignedBy(repository, gpgFile), asc: withSignedBy(repository, ascFile) };
    return [
        sh`    [ -d ${p.keyrings} ] || mkdir -p ${p.keyrings}`,
        sh`    [ -d ${p.sourcesList} ] || mkdir -p ${p.sourcesList}`,
        ...(key === undefined
            ? [sh`    line=${lines.gpg}`]
            : [
                  sh`    key=${key}`,
                  // Dearmored for apt when gpg is there; else the armored key, which apt reads as .asc.
                  "    if command -v gpg >/dev/null 2>&1; then",
                  sh`      printf '%s\\n' "$key" | gpg --dearmor > ${gpgFile + ".tmp"}; mv ${gpgFile + ".tmp"} ${gpgFile}; chmod 0644 ${gpgFile}; rm -f ${ascFile}`,
                  sh`      line=${lines.gpg}`,
                  "    else",
                  sh`      printf '%s\\n' "$key" > ${ascFile}; chmod 0644 ${ascFile}; rm -f ${gpgFile}`,
                  sh`      line=${lines.asc}`,
                  "    fi",
              ]),
        sh`    printf '%s\\n' "$line" > ${listFile}`,
    ];
}
