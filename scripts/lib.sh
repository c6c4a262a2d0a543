# shellcheck shell=bash
# Shared settings for the project's scripts (sourced, not run).
# FOU_CACHE holds everything built or downloaded (toolchain, Pulumi plugins, VM image); nothing
# under it is part of a stack, and deleting it only costs a rebuild.
FOU_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FOU_CACHE=${FOU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fou-tunnel}
PULUMI_VERSION=3.248.0
COMMAND_VERSION=1.2.1
export FOU_REPO FOU_CACHE

fou_log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# The environment every pulumi invocation of this project runs with: the cached toolchain,
# a private PULUMI_HOME, no update checks or plugin downloads, a local file backend and a
# passphrase kept beside the state (unless the caller chose their own).
# A file backend writes the whole state as each step begins and as it ends (and copies the old
# file to .bak each time); on a mesh those writes, not the hosts, bound destroy. zstd cuts them
# (mesh6 destroy 46 -> 28 s; profiled: md5 and the write of the bytes). Every checkpoint is still
# written, and pulumi reads either form. A caller who set any of pulumi's compression variables
# (either name of either: the DIY_BACKEND_* name wins over its SELF_MANAGED_STATE_* one) keeps
# their choice: PULUMI_DIY_BACKEND_ZSTD=false goes back to plain JSON on the next write.
fou_pulumi_env() {
    export PATH="$FOU_CACHE/toolchain/current/bin:$PATH"
    export PULUMI_HOME="$FOU_CACHE/pulumi-home"
    export PULUMI_SKIP_UPDATE_CHECK=true
    export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
    if [ -z "${PULUMI_DIY_BACKEND_ZSTD+set}${PULUMI_SELF_MANAGED_STATE_ZSTD+set}${PULUMI_DIY_BACKEND_GZIP+set}${PULUMI_SELF_MANAGED_STATE_GZIP+set}" ]; then
        export PULUMI_DIY_BACKEND_ZSTD=true
    fi
    local state="$FOU_REPO/.pulumi-state"
    if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
        mkdir -p "$state"
        export PULUMI_BACKEND_URL="file://$state"
    fi
    if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
        mkdir -p "$state"
        if [ ! -s "$state/passphrase" ]; then
            (umask 077; head -c 24 /dev/urandom | base64 > "$state/passphrase")
        fi
        export PULUMI_CONFIG_PASSPHRASE_FILE="$state/passphrase"
    fi
}
