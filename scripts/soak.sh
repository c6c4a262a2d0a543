#!/usr/bin/env bash
# Fault soak (not part of `npm test`): `pulumi up` of the guide killed with SIGINT or SIGKILL at
# a random moment, then recovered with scripts/up.sh, SOAK_RUNS times (default 10); see
# test/soak.ts. SOAK_SEED=<n> repeats a soak. Boots real VMs on 198.51.100.0/24 (keep it free).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FOU_REPO"
"$FOU_REPO/scripts/setup.sh"
"$FOU_REPO/vm/build-image.sh" >/dev/null
TS_NODE_TRANSPILE_ONLY=true exec node --require ts-node/register test/soak.ts
