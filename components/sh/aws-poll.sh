# The first command on an EC2 instance (hosts/awsTunnelHosts.ts), as the login user: waits until
# cloud-init has finished with the user data (the packages it installs come last, after sshd is
# up) and fails, naming the status, if it did not finish cleanly. Then prints device=: the
# interface that holds the instance's private address, else the default route's device (ens5 on
# Nitro instances). Not `ip route get <own address>`: the local table answers that with dev lo.
# The step sets, quoted: fou_private (the private address).
# shellcheck shell=sh disable=SC2154 # the variable above is set by the step
if command -v cloud-init >/dev/null 2>&1; then
  ci=$(cloud-init status --wait 2>&1 | tr -d . | tail -n 1) || true
  case $ci in
    *"status: done"*) ;;
    *) echo "fou-tunnel: $(hostname): cloud-init did not finish the user data cleanly (${ci:-no status}): see /var/log/cloud-init.log and /var/log/cloud-init-output.log" >&2; exit 1 ;;
  esac
fi
dev=$(ip -o -4 addr show to "$fou_private/32" | awk '{ print $2; exit }')
[ -n "$dev" ] || dev=$(ip -o -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
if [ -z "$dev" ]; then echo "fou-tunnel: $(hostname) has no interface with $fou_private and no default route" >&2; exit 1; fi
echo "device=$dev"
