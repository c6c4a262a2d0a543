#!/usr/bin/env bash
# The project's tests, from a bare machine: installs and caches what they need (setup.sh, the VM
# image), then runs the type check, the Go tests of the toolchain, the unit tests (Pulumi mocks),
# the toolchain test (pulumi preview offline) and the integration test (real VMs, pulumi up and
# destroy). `scripts/test.sh unit` runs only what needs no VM.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FOU_REPO"

"$FOU_REPO/scripts/setup.sh"
export PATH="$PATH:/usr/local/go/bin"

# The unit tests run host scripts under each shell a host may run them with (test/unit/hostShells.ts):
# dash (/bin/sh on Debian and Ubuntu), bash and busybox sh; shellcheck lints them. Any busybox
# will do (busybox or busybox-static, which conflict): only a missing one is installed.
install_test_debs() {
    local missing=()
    command -v dash >/dev/null 2>&1 || missing+=(dash)
    command -v bash >/dev/null 2>&1 || missing+=(bash)
    command -v busybox >/dev/null 2>&1 || missing+=(busybox)
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
    if [ ${#missing[@]} -gt 0 ]; then
        fou_log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
install_test_debs

fou_log "type check"
node_modules/.bin/tsc --noEmit -p .

fou_log "go tests of the toolchain"
(cd toolchain/language-host && go vet ./...)
(cd toolchain/command-provider && go vet ./... && go test -count=1 ./...)

files=(test/unit/*.test.ts)
if [ "${1:-all}" != unit ]; then
    fou_log "VM image"
    "$FOU_REPO/vm/build-image.sh" >/dev/null
    # A run that was killed before its destroy (a stopped session, a dead CI job) leaves its bridge
    # on the test network, and every VM test would refuse the taken subnet. Bridges of ours
    # whose VMs are all gone are removed; one with a live VM stays, and the tests refuse it.
    fou_log "stale test networks"
    "$FOU_REPO/vm/net.sh" reclaim
    files+=(test/toolchain.test.ts test/integration/*.test.ts)
fi
fou_log "node tests: ${files[*]}"
TS_NODE_TRANSPILE_ONLY=true exec node --require ts-node/register --test --test-concurrency=1 "${files[@]}"
