# shellcheck shell=bash
# Shared by the scripts: install what a step needs, or fail saying what to install.

# as_root CMD...: runs CMD as root (directly, or through sudo).
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "need root to run: $*" >&2
        return 1
    fi
}

APT_UPDATED=
# need_apt PACKAGE PROBE: installs the Debian PACKAGE unless PROBE (a command
# name or a file path) is already there.
need_apt() {
    local package=$1 probe=$2
    if command -v "$probe" >/dev/null 2>&1 || [ -e "$probe" ]; then
        return 0
    fi
    command -v apt-get >/dev/null || {
        echo "missing $probe: install the package $package" >&2
        return 1
    }
    echo "installing $package (for $probe)..."
    if [ -z "$APT_UPDATED" ]; then
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}

# target_dir: cargo's target directory (honours CARGO_TARGET_DIR and config).
target_dir() {
    cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
