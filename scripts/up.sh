#!/usr/bin/env bash
# The main job on a fresh machine: set up the offline toolchain and the VM image, then
# `pulumi up` of the local `dev` stack (two new-kernel VMs and the guide's FOU tunnel).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FOU_REPO"
"$FOU_REPO/scripts/setup.sh"
"$FOU_REPO/vm/build-image.sh" >/dev/null
P="$FOU_REPO/scripts/pulumi"
"$P" stack select dev --create --non-interactive >/dev/null
"$P" up --yes --stack dev "$@"
"$P" stack output --stack dev
cat <<MSG

The tunnel is up. Useful next steps:
  scripts/pulumi stack output verification --stack dev   # the guide's ping + tcpdump from each end
  (umask 077; scripts/pulumi stack output sshPrivateKey --show-secrets --stack dev > fou-key.pem)
  ssh -i fou-key.pem root@198.51.100.151 ip -d link show ftok2   # sshCommands lists each host
  scripts/pulumi destroy --yes --stack dev                # undo every step, stop the VMs
MSG
