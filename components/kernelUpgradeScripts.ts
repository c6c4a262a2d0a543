/**
 * The scripts of {@link KernelUpgrade} (components/kernelUpgrade.ts): the install step's create
 * and delete, its drift check, and the verify step's create. Every path they read or write is a
 * parameter ({@link KernelPaths}), so tests run them on a fake host without rewriting them.
 *
 * One file per part: kernelUpgradePaths.ts (the paths), kernelUpgradeFou.ts (what the running
 * kernel lacks; the drift check), kernelUpgradeInstall.ts (the install step, phase by phase),
 * kernelUpgradeDistro.ts (what differs per distribution family), kernelUpgradeApt.ts (an apt
 * repository and its key), kernelUpgradeVerify.ts (the verify step).
 */
export { APT_NAME, withSignedBy } from "./kernelUpgradeApt";
export { BOOKWORM_KERNEL, ELREPO } from "./kernelUpgradeDistro";
export { fouUsableCheck } from "./kernelUpgradeFou";
export { kernelInstallScripts } from "./kernelUpgradeInstall";
export type { KernelInstallOptions } from "./kernelUpgradeInstall";
export { kernelPaths } from "./kernelUpgradePaths";
export type { KernelPaths } from "./kernelUpgradePaths";
export { kernelVerifyScript } from "./kernelUpgradeVerify";
