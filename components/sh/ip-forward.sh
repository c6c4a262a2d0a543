# HostPrep's forwarding step (components/hostPrepForward.ts): `net.ipv4.ip_forward = 1` the
# guide's way, a line in /etc/sysctl.conf, applied now. Each resource that wants forwarding holds
# a claim file; the value found before the first claim is kept host-wide, and the last claim's
# delete restores it and removes the line, so two stacks on one host never undo each other's
# forwarding. The step sets, quoted: fou_claim (its claim file, <root>/<namespace>/<name>.ip_forward),
# fou_root (the state root), fou_orig (the value before the first claim), fou_at (for messages).
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step

# The delete, and what a failed create puts back: drops the claim; the last one restores the
# value first seen and removes the line.
fou_forward_release() {
  rm -f "$fou_claim"
  if ! ls "$fou_root"/*/*.ip_forward >/dev/null 2>&1; then
    if [ -f /etc/sysctl.conf ]; then sed -i '/^# fou-tunnel ip_forward$/{N;d}' /etc/sysctl.conf; fi
    if [ -f "$fou_orig" ]; then sysctl -q -w "net.ipv4.ip_forward=$(cat "$fou_orig")"; rm -f "$fou_orig"; fi
  fi
  rmdir "${fou_claim%/*}" 2>/dev/null || true; rmdir "$fou_root" 2>/dev/null || true
}

# The create: claims forwarding, keeps the value first seen, writes the line and applies it;
# prints previous=<the value first seen>.
fou_forward_create() {
  fou_guard fou_forward_release
  # shellcheck disable=SC2034 # read by fou_undo (undo.sh)
  [ -e "$fou_claim" ] || fou_changing=1
  mkdir -p "${fou_claim%/*}"
  [ -f "$fou_orig" ] || cat /proc/sys/net/ipv4/ip_forward > "$fou_orig"
  touch "$fou_claim"
  touch /etc/sysctl.conf
  grep -qxF '# fou-tunnel ip_forward' /etc/sysctl.conf || printf '%s\n%s\n' '# fou-tunnel ip_forward' 'net.ipv4.ip_forward = 1' >> /etc/sysctl.conf
  sysctl -q -w net.ipv4.ip_forward=1
  echo "previous=$(cat "$fou_orig")"
}
