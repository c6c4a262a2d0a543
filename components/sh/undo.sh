# Host-side helpers every step that changes a host can use. A step's program (components/host.ts
# stepProgram) defines these before its create and delete; values reach them as variables that
# the generated part of the step sets, quoted: fou_at names the host and object in messages
# (`k1: link ftok2`).
# shellcheck shell=sh disable=SC2154 # fou_at is set by the step that carries this library

# fou_run_apply FN: runs FN (a function holding the object's apply) with `set -e` in force
# inside it and its output kept. On success the output is printed as it came; on failure it is
# printed on stderr behind "fou-tunnel: $fou_at:" and the step exits with FN's status, so the
# error a user sees leads with the host, the object and the host's own reason. (Run as an `if`
# condition, `set -e` would not stop FN at its first failing command.)
fou_run_apply() {
  set +e
  fou_out=$(set -e; "$1" 2>&1)
  fou_rc=$?
  set -e
  if [ "$fou_rc" -ne 0 ]; then
    printf 'fou-tunnel: %s: %s\n' "$fou_at" "${fou_out#fou-tunnel: }" >&2
    exit "$fou_rc"
  fi
  if [ -n "$fou_out" ]; then printf '%s\n' "$fou_out"; fi
}

# fou_guard FN: from here on, a step that exits non-zero after it set fou_changing=1 (it began to
# change the host) runs FN to put back what it changed, and says so after its reason: Pulumi
# records nothing for a failed create, so no delete would ever undo it.
fou_guard() {
  fou_changing=
  fou_put_back=$1
  trap fou_undo EXIT
}

# The EXIT trap of fou_guard.
fou_undo() {
  fou_rc=$?
  trap - EXIT
  if [ "$fou_rc" -ne 0 ] && [ -n "$fou_changing" ]; then
    if fou_why=$( (set -e; "$fou_put_back") 2>&1); then
      echo "fou-tunnel: $fou_at: put back what this step changed" >&2
    else
      echo "fou-tunnel: $fou_at: could not put back what this step changed: $fou_why" >&2
    fi
  fi
  exit "$fou_rc"
}
