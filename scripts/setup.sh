#!/usr/bin/env bash
# Provides everything `pulumi up` of this project needs, offline and idempotently:
#   - the npm dependencies (npm ci, without install scripts: @pulumi/command's would download);
#   - the Pulumi CLI, built from the Go module proxy (toolchain/cli);
#   - the Node.js language host and the command provider plugin: taken from PATH when present,
#     else built from toolchain/language-host and toolchain/command-provider;
#   - a PULUMI_HOME with the command plugin installed at the version @pulumi/command asks for.
# Built binaries are cached under $FOU_CACHE/toolchain/<key>, the key covering the versions and
# the sources, so a second run takes about a second.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need() { command -v "$1" >/dev/null 2>&1; }

install_debs() {
    local missing=()
    need ssh-keygen || missing+=(openssh-client)
    need go || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)
    if [ ${#missing[@]} -gt 0 ]; then
        fou_log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
    return 0
}

install_node_modules() {
    local stamp="$FOU_REPO/node_modules/.fou-lock-sha"
    local want
    want=$(sha256sum "$FOU_REPO/package-lock.json" | cut -c1-64)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        fou_log "npm ci"
        (cd "$FOU_REPO" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        echo "$want" > "$stamp"
    fi
}

toolchain_key() {
    {
        echo "pulumi=$PULUMI_VERSION command=$COMMAND_VERSION $(go version)"
        (cd "$FOU_REPO/toolchain" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
            sort -z | xargs -0 sha256sum)
        for b in pulumi pulumi-language-nodejs pulumi-resource-command; do
            if p=$(path_binary "$b"); then echo "$b=$p $(stat -c %Y "$p")"; fi
        done
    } | sha256sum | cut -c1-16
}

# A binary of that name on PATH, other than our own cached ones.
path_binary() {
    local p
    p=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v "^$FOU_CACHE/" | paste -sd:) command -v "$1" 2>/dev/null) || return 1
    printf '%s\n' "$p"
}

# provide NAME DEST BUILD…: link NAME from PATH when it is there, else run BUILD (which writes DEST).
provide() {
    local name=$1 dest=$2 p
    shift 2
    if p=$(path_binary "$name"); then
        fou_log "using $name from $p"
        ln -s "$p" "$dest"
    else
        fou_log "building $name"
        "$@"
    fi
}

build_cli() {
    fou_log "(the CLI comes from the Go module proxy: a few minutes the first time)"
    (cd "$FOU_REPO/toolchain/cli" && go build -trimpath -tags osusergo,grpcnotrace \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        -o "$1" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

# build_go DIR VERSION OUT: one of this project's Go programs under toolchain/.
build_go() {
    (cd "$FOU_REPO/toolchain/$1" && go build -trimpath -ldflags "-s -w -X main.version=$2" -o "$3" .)
}

build_toolchain() {
    local key dir tmp
    key=$(toolchain_key)
    dir="$FOU_CACHE/toolchain/$key"
    if [ ! -x "$dir/plugins/pulumi-resource-command" ]; then
        tmp=$(mktemp -d "$FOU_CACHE/toolchain/.build.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        mkdir -p "$tmp/bin"
        local started=$SECONDS
        provide pulumi "$tmp/bin/pulumi" build_cli "$tmp/bin/pulumi"
        provide pulumi-language-nodejs "$tmp/bin/pulumi-language-nodejs" \
            build_go language-host "$PULUMI_VERSION" "$tmp/bin/pulumi-language-nodejs"
        # The provider lives outside bin/ (which goes on PATH): the CLI would otherwise pick it up
        # from PATH with a warning instead of using the plugin installed in PULUMI_HOME.
        mkdir -p "$tmp/plugins"
        provide pulumi-resource-command "$tmp/plugins/pulumi-resource-command" \
            build_go command-provider "$COMMAND_VERSION" "$tmp/plugins/pulumi-resource-command"
        rm -rf "$dir"
        mv "$tmp" "$dir"
        trap - EXIT
        fou_log "toolchain built in $((SECONDS - started)) s: $dir/bin"
    fi
    ln -sfn "$key" "$FOU_CACHE/toolchain/current"
}

# The genuine CLI ships pulumi-resource-pulumi-nodejs beside itself: a helper that runs
# @pulumi/pulumi's dynamic-provider entry point, which every pulumi.dynamic.Resource needs.
# @pulumi/pulumi carries the same script; put it next to our CLI (where the CLI looks first).
install_dynamic_provider_helper() {
    local src="$FOU_REPO/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
    local dest="$FOU_CACHE/toolchain/current/bin/pulumi-resource-pulumi-nodejs"
    cmp -s "$src" "$dest" || install -m 0755 "$src" "$dest"
}

install_plugin() {
    fou_pulumi_env
    local marker="$PULUMI_HOME/.command-plugin-from"
    local from
    from=$(readlink -f "$FOU_CACHE/toolchain/current/plugins/pulumi-resource-command")
    if [ "$(cat "$marker" 2>/dev/null)" != "$from" ]; then
        fou_log "installing the command plugin $COMMAND_VERSION into $PULUMI_HOME"
        pulumi plugin install resource command "$COMMAND_VERSION" --file "$from" --reinstall >/dev/null
        echo "$from" > "$marker"
    fi
}

mkdir -p "$FOU_CACHE/toolchain"
exec 9>"$FOU_CACHE/toolchain/.lock"
flock 9
install_debs
install_node_modules
build_toolchain
install_dynamic_provider_helper
install_plugin
fou_log "ready: $(pulumi version) with $(pulumi plugin ls 2>/dev/null | awk '$1=="command"{print "command " $3}')"
