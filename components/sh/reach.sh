# The first command on a machine that exists already (components/sshHost.ts): it got there (the
# dial worked and the pinned host key matched), the user is root or sudo works without a password,
# `ip` is installed, the underlay address is one of the host's, and the device: the one holding the
# address (`ip -o -4 addr show`, `-6` for an IPv6 one), or the one given, which must exist. Prints device= and
# address=; changes nothing. The step sets, quoted: at (the host as messages name it, `k1
# (deploy@198.51.100.162 port 22)`), want (the underlay address), given (the device, or empty).
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step

# Without sudo the login user must be root: the steps need it.
fou_need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "fou-tunnel: $at: user $(id -un) is not root and sudo is off: the steps need root; connect as root or turn sudo on" >&2
    exit 1
  fi
}

# With sudo, the host must have it (whether it asks for a password is checked next, by withSudo).
fou_need_sudo() {
  if ! command -v sudo >/dev/null 2>&1; then
    echo "fou-tunnel: $at: user $(id -un) is not root and $(hostname) has no sudo: install sudo and allow this user to run commands without a password (NOPASSWD), or connect as root" >&2
    exit 1
  fi
}

# The look at the host, as root.
fou_reach() {
  host=$(hostname)
  if ! command -v ip >/dev/null 2>&1; then echo "fou-tunnel: $at: $host has no ip command: install iproute2" >&2; exit 1; fi
  case $want in *:*) fam=6 ;; *) fam=4 ;; esac
  dev=$(ip -o "-$fam" addr show | awk -v a="$want" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
  if [ -z "$dev" ]; then
    have=$(ip -o "-$fam" addr show scope global | awk '{ printf "%s%s on %s", s, $4, $2; s = ", " }')
    echo "fou-tunnel: $at: $want is not an address of $host (it has ${have:-no global IPv$fam address}): set underlayAddress to the address its peers reach it at" >&2
    exit 1
  fi
  if [ -n "$given" ] && [ "$given" != "$dev" ]; then
    if ! ip link show dev "$given" >/dev/null 2>&1; then
      echo "fou-tunnel: $at: $host has no device $given ($want is on $dev): set device to an existing one, or leave it unset" >&2
      exit 1
    fi
    dev=$given
  fi
  echo "device=$dev"
  echo "address=$want"
}
