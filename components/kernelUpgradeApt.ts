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
 * The variables of components/sh/kernel-upgrade.sh's apt repository, quoted: REPOSITORY (an apt
 * source line; empty: none) goes to `<sourcesList>/fou-tunnel-kernel.list`, and KEY
 * (ASCII-armored; empty: none) under the keyrings directory, as `fou-tunnel-kernel.gpg`
 * (dearmored) or `.asc` (armored, on a host without gpg), which the line names as `signed-by=`.
 */
export function aptVariables(repository: string | undefined, rawKey: string | undefined, p: KernelPaths): string[] {
    const key = repository === undefined ? "" : (rawKey?.trim() ?? "");
    const gpgFile = `${p.keyrings}/${APT_NAME}.gpg`;
    const ascFile = `${p.keyrings}/${APT_NAME}.asc`;
    const signed = (file: string) => (repository === undefined || key === "" ? "" : withSignedBy(repository, file));
    return [
        sh`fou_repository=${repository?.trim() ?? ""}; fou_apt_list=${`${p.sourcesList}/${APT_NAME}.list`}`,
        sh`fou_keyrings=${p.keyrings}; fou_sources_list=${p.sourcesList}; fou_key_gpg=${gpgFile}; fou_key_asc=${ascFile}`,
        sh`fou_apt_gpg_line=${signed(gpgFile)}`,
        sh`fou_apt_asc_line=${signed(ascFile)}`,
        sh`fou_key=${key}`,
    ];
}
