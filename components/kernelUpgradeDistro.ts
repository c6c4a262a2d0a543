import { aptRepositoryLines } from "./kernelUpgradeApt";
import type { KernelPaths } from "./kernelUpgradePaths";
import { sh, shq } from "./shell";

/**
 * The install step's lines that differ per distribution family (`$family`: el7, el8, el9,
 * debian, ubuntu): which family the host is, how its package manager installs the kernel and
 * iproute2, and how its bootloader is told to boot the new kernel.
 */

/** ELRepo, as the guide uses it on CentOS 7 (and its el8/el9 builds on RHEL-family 8 and 9). */
export const ELREPO = {
    key: "https://www.elrepo.org/RPM-GPG-KEY-elrepo.org",
    keyV2: "https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org",
    release: (major: number) => `https://www.elrepo.org/elrepo-release-${major}.el${major}.elrepo.noarch.rpm`,
} as const;

/** The default kernel package on Debian 12 (bookworm): its 6.12 kernel, which has fou. */
export const BOOKWORM_KERNEL = "linux-image-6.12";

/**
 * Sets `family` from os-release (ID, ID_LIKE, VERSION_ID) and `lacks` (what the running kernel
 * and `ip` lack, for messages); exits with an error on any other distribution, and on an el
 * host given an apt repository (HAS_REPOSITORY).
 */
export function familyLines(p: KernelPaths, hasRepository: boolean): string[] {
    return [
        // The distribution, as HostPrep's kernel step reads it (components/sh/kernel-prep.sh).
        `osr() { sed -n "s/^$1=//p" ${shq(p.osRelease)} 2>/dev/null | head -n 1 | tr -d "\\"'"; }`,
        "os_id=$(osr ID); os_like=$(osr ID_LIKE); os_ver=$(osr VERSION_ID)",
        "family=",
        'case " $os_id $os_like " in',
        '  *" ubuntu "*) family=ubuntu ;;',
        '  *" debian "*) family=debian ;;',
        '  *" rhel "*|*" centos "*) case "$os_ver" in 7|7.*) family=el7 ;; 8|8.*) family=el8 ;; 9|9.*) family=el9 ;; esac ;;',
        "esac",
        'lacks=; [ -z "$kmiss" ] || lacks="Linux $rel lacks:$kmiss"; [ -z "$ipmiss" ] || lacks="${lacks:+$lacks; }$ipmiss is missing"',
        'if [ -z "$family" ]; then',
        `  echo "fou-tunnel: $fou_at: $lacks, and the kernel upgrade knows Debian, Ubuntu, CentOS/RHEL 7 and RHEL-family 8/9 only; ${p.osRelease} says ID=\${os_id:-none}, VERSION_ID=\${os_ver:-none}: nothing was installed; install a kernel with fou (CONFIG_NET_FOU) by hand, or remove kernel.upgrade from the topology" >&2`,
        "  exit 1",
        "fi",
        ...(hasRepository
            ? [
                  'case $family in el*)',
                  '  echo "fou-tunnel: $fou_at: kernel.repository is an apt source line, and this host is ${os_id} ${os_ver} (yum/dnf): nothing was installed; remove repository (ELRepo is used)" >&2; exit 1 ;;',
                  "esac",
              ]
            : []),
    ];
}

/** What the kernel install asks of the package managers. */
export interface KernelPackageOptions {
    /** The kernel package; default per distribution. */
    readonly package?: string;
    /** An apt source line (`deb [options] URL suite components`). */
    readonly repository?: string;
    /** The repository's ASCII-armored public key. */
    readonly key?: string;
}

/** CentOS/RHEL 7: the guide's ELRepo `kernel-ml` through yum (`ensure` skips an installed elrepo-release). */
function el7Install(pkg: string): string[] {
    return [
        "  el7)",
        sh`    run rpm --import ${ELREPO.key}`,
        sh`    ensure elrepo-release run yum install -y ${ELREPO.release(7)}`,
        sh`    pkg=${pkg}`,
        '    run yum --enablerepo=elrepo-kernel install -y "$pkg" ;;',
    ];
}

/** RHEL-family 8 and 9: ELRepo's el8/el9 `kernel-ml` through dnf. */
function el89Install(pkg: string): string[] {
    return [
        "  el8|el9)",
        "    major=${family#el}",
        sh`    run rpm --import ${ELREPO.key}`,
        sh`    run rpm --import ${ELREPO.keyV2}`,
        `    ensure elrepo-release run dnf install -y "https://www.elrepo.org/elrepo-release-$major.el$major.elrepo.noarch.rpm"`,
        sh`    pkg=${pkg}`,
        '    run dnf --enablerepo=elrepo-kernel install -y "$pkg" ;;',
    ];
}

/**
 * Debian and Ubuntu: the package (bookworm: `linux-image-6.12-<arch>`, other Debian
 * `linux-image-<arch>`, Ubuntu `linux-generic-hwe-<VERSION_ID>`), from the archive or from the
 * repository, through apt-get.
 */
function debianInstall(o: KernelPackageOptions, p: KernelPaths): string[] {
    return [
        "  *)",
        "    export DEBIAN_FRONTEND=noninteractive",
        ...(o.package !== undefined
            ? [sh`    pkg=${o.package}`]
            : [
                  "    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)",
                  "    case $family:$os_ver in",
                  `      debian:12|debian:12.*) pkg="${BOOKWORM_KERNEL}-$arch" ;;`,
                  '      debian:*) pkg="linux-image-$arch" ;;',
                  '      ubuntu:*) pkg="linux-generic-hwe-$os_ver" ;;',
                  "    esac",
              ]),
        ...aptRepositoryLines(o.repository, o.key, p),
        "    run apt-get update",
        '    run apt-get install -y "$pkg" ;;',
    ];
}

/** Installs the kernel package of the host's family; `pkg` names it afterwards. */
export function kernelPackageLines(o: KernelPackageOptions, p: KernelPaths): string[] {
    return ["case $family in", ...el7Install(o.package ?? "kernel-ml"), ...el89Install(o.package ?? "kernel-ml"), ...debianInstall(o, p), "esac"];
}

/**
 * Makes `$new` the default boot entry: `grub2-set-default 0` and `grub2-mkconfig` on el7 (the
 * guide's way), `grubby --set-default` on el8/9, `update-grub` on Debian and Ubuntu.
 */
export function bootloaderLines(p: KernelPaths): string[] {
    return [
        "case $family in",
        "  el7)",
        "    run grub2-set-default 0",
        sh`    run grub2-mkconfig -o ${p.grubCfg} ;;`,
        sh`  el*) run grubby --set-default ${p.boot + "/vmlinuz-"}"$new" ;;`,
        // The kernel package's own hook runs update-grub too; a host without GRUB has none.
        "  *) if command -v update-grub >/dev/null 2>&1; then run update-grub; fi ;;",
        "esac",
    ];
}

/**
 * Installs a newer iproute2 (iproute on el), indented by INDENT. FIRST: the first apt-get of the
 * run (it sets the frontend and updates the package lists).
 */
export function iprouteLines(indent: string, first: boolean): string[] {
    return [
        "case $family in",
        "  el7) run yum -y update iproute ;;",
        "  el*) run dnf install -y iproute ;;",
        first
            ? "  *) export DEBIAN_FRONTEND=noninteractive; run apt-get update; run apt-get install -y iproute2 ;;"
            : "  *) run apt-get install -y iproute2 ;;",
        "esac",
    ].map((l) => indent + l);
}
