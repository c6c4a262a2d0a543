/**
 * Day two on real VMs: what the day-two test and the fault soak share, and the soak itself. The
 * parts are in test/soak/: the guide's stack (guide.ts), its processes (processes.ts), what a
 * crash leaves (state.ts), an interrupted up and its recovery (recovery.ts), the verdict
 * (converged.ts) and the runs (runs.ts); this file is the script `npm run soak` starts.
 *
 * The soak (`npm run soak`, not part of `npm test`): RUNS times (default 10), a `pulumi up` of
 * the guide is killed with SIGINT or SIGKILL at a random moment (seeded; the seed is printed and
 * `SOAK_SEED=<n>` repeats a soak), then recovered the way docs/day-two.md says (`scripts/up.sh`,
 * which clears a stale lock and pending creates and runs `pulumi up --refresh`); each run must
 * end converged: every resource in the state, pings both ways through the tunnel, the stack's
 * verification output, one qemu per VM and nothing else of the stack's on this machine. Every
 * other run starts from nothing (the stack destroyed), the rest from a stack that is up, with one
 * VM's qemu killed first, so the interrupted up is one that boots a VM again. One line per run,
 * then `N/N converged`; exit 1 otherwise. Needs the test network (198.51.100.0/24) free and,
 * like every VM test here, runs under `flock /tmp/fou-vm.lock`.
 */
import { soak } from "./soak/runs";

export { assertConverged } from "./soak/converged";
export { GUIDE_CONFIG, K1, K2, namesOf, sleep, stackEnv, VM_NAMES } from "./soak/guide";
export { backendProcesses, killVm, pulumiPid, qemuPids } from "./soak/processes";
export { interruptedUp, upSh } from "./soak/recovery";
export type { Moment } from "./soak/recovery";
export { random } from "./soak/runs";
export { leftovers, locks, pendingOperations, simulateReboot } from "./soak/state";

if (require.main === module) {
    soak().then(
        (code) => process.exit(code),
        (e) => {
            console.error(e);
            process.exit(1);
        },
    );
}
