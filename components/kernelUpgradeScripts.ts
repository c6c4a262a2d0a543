/**
 * The scripts of {@link KernelUpgrade} (components/kernelUpgrade.ts): the install step's create
 * and delete, its drift check, and the verify step's create. Their fixed shell is source in
 * components/sh/ (kernel-fou.sh: what the running kernel lacks, the drift check;
 * kernel-upgrade.sh: the install, phase by phase and per distribution family; kernel-verify.sh:
 * the verify); the options and every path they read or write ({@link KernelPaths}) reach it as
 * quoted variables, so tests run them on a fake host without rewriting them.
 *
 * One file per part: kernelUpgradePaths.ts (the paths), kernelUpgradeFou.ts (the module list;
 * the drift check), kernelUpgradeInstall.ts (the install step), kernelUpgradeApt.ts (an apt
 * repository and its key), kernelUpgradeVerify.ts (the verify step).
 */
export { APT_NAME, withSignedBy } from "./kernelUpgradeApt";
export { fouUsableCheck } from "./kernelUpgradeFou";
export { BOOKWORM_KERNEL, ELREPO, kernelInstallScripts } from "./kernelUpgradeInstall";
export type { KernelInstallOptions, KernelPackageOptions } from "./kernelUpgradeInstall";
export { kernelPaths } from "./kernelUpgradePaths";
export type { KernelPaths } from "./kernelUpgradePaths";
export { kernelVerifyScripts } from "./kernelUpgradeVerify";
