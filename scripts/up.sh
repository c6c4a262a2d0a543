#!/usr/bin/env bash
# The main job on a fresh machine, and the way back after anything went wrong: set up the
# offline toolchain and the VM image, then `pulumi up --refresh` of the local `dev` stack (two
# new-kernel VMs and the guide's FOU tunnel).
#
# --refresh makes the VMs and the bridge look at this machine first: a VM whose qemu died, or
# everything gone with a reboot of this machine, is booted again, and the tunnel rebuilt on it.
# Before that, what an interrupted run (Ctrl-C, kill -9, a crash) left in the way is cleared the
# ways Pulumi documents: its lock (`pulumi cancel`), but only when the process that holds it is
# gone from this machine; and its pending CREATE operations (`pulumi refresh
# --clear-pending-creates`: the next up creates them again, and every create adopts what the
# interrupted one left).
#
# Env: FOU_STACK (default dev). Arguments go to every refresh/up (e.g. --config-file FILE).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FOU_REPO"
"$FOU_REPO/scripts/setup.sh"
"$FOU_REPO/vm/build-image.sh" >/dev/null
P="$FOU_REPO/scripts/pulumi"
STACK=${FOU_STACK:-dev}
"$P" stack select "$STACK" --create --non-interactive >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Removes the stack's lock if every process holding it is gone: Pulumi's message names each
# lock's host and pid ("created by user@host (pid N)"). Returns 1 if a holder may still run.
clear_stale_lock() {
    local holders host pid
    holders=$(grep -oE 'created by [^ ]+@[^ ]+ \(pid [0-9]+\)' "$log" | sed -E 's/created by [^@ ]+@([^ ]+) \(pid ([0-9]+)\)/\1 \2/') || true
    [ -n "$holders" ] || return 1
    while read -r host pid; do
        if [ "$host" != "$(uname -n)" ]; then
            fou_log "the stack is locked from $host (pid $pid); not breaking another machine's lock"
            return 1
        fi
        if kill -0 "$pid" 2>/dev/null; then
            fou_log "the stack is locked by pid $pid, which still runs; wait for it (or stop it) first"
            return 1
        fi
    done <<<"$holders"
    fou_log "the stack's lock belongs to a pulumi that is gone (interrupted): pulumi cancel"
    "$P" cancel --yes --stack "$STACK" --non-interactive
}

# Runs pulumi ARGS, showing its output; after a failure on a stale lock, clears it and runs again.
pulumi_unlocked() {
    local rc=0
    "$P" "$@" 2>&1 | tee "$log" || rc=$?
    if [ "$rc" -ne 0 ] && grep -q 'the stack is currently locked' "$log" && clear_stale_lock; then
        rc=0
        "$P" "$@" || rc=$?
    fi
    return "$rc"
}

# Pending CREATE operations: resources whose create was under way when a run was killed.
pending_creates() {
    "$P" stack export --stack "$STACK" | node -e '
        let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
            const ops = (JSON.parse(s).deployment || {}).pending_operations || [];
            console.log(ops.filter((o) => o.type === "creating").length);
        });'
}

n=$(pending_creates)
if [ "$n" -gt 0 ]; then
    fou_log "$n pending CREATE operation(s) from an interrupted run: pulumi refresh --clear-pending-creates"
    pulumi_unlocked refresh --yes --clear-pending-creates --stack "$STACK" --non-interactive "$@"
fi
pulumi_unlocked up --yes --refresh --stack "$STACK" --non-interactive "$@"
"$P" stack output --stack "$STACK"
cat <<MSG

The tunnel is up. Useful next steps:
  scripts/pulumi stack output verification --stack $STACK   # the guide's ping + tcpdump from each end
  (umask 077; scripts/pulumi stack output sshPrivateKey --show-secrets --stack $STACK > fou-key.pem)
  ssh -i fou-key.pem root@198.51.100.151 ip -d link show ftok2   # sshCommands lists each host
  scripts/pulumi destroy --yes --stack $STACK                # undo every step, stop the VMs
  npm run up                                                 # again, whenever something went wrong
MSG
