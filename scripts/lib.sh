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

# Cross builds link with zig (cargo-zigbuild) against glibc symbol stubs of
# this version, so one binary runs on every Venus OS from v2.80 (glibc 2.31)
# and every Raspberry Pi OS from buster (glibc 2.28) on.
CROSS_GLIBC=2.28

# zig_build TRIPLE CARGO-ARGS...: cargo zigbuild --release for TRIPLE,
# installing what it lacks: the rustup target, and cargo-zigbuild with zig
# (from PyPI, into a private virtualenv under the target directory).
zig_build() {
    local triple=$1
    shift
    rustup target list --installed | grep -qx "$triple" || {
        echo "adding the Rust target $triple" >&2
        rustup target add "$triple" >&2
    }
    if ! command -v cargo-zigbuild >/dev/null; then
        local venv
        venv=$(target_dir)/zigbuild-venv
        if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
            echo "installing cargo-zigbuild and ziglang (PyPI) into $venv" >&2
            # Debian's python3 needs python3-venv for ensurepip.
            python3 -m venv "$venv" >&2 2>/dev/null || {
                need_apt python3-venv /usr/share/doc/python3-venv
                python3 -m venv "$venv" >&2
            }
            "$venv/bin/pip" install --quiet cargo-zigbuild ziglang >&2
        fi
        PATH=$venv/bin:$PATH
    fi
    cargo zigbuild --quiet --release --target "$triple.$CROSS_GLIBC" "$@" >&2
}

# check_glibc BINARY: fails, naming the symbols, if BINARY needs a glibc
# newer than CROSS_GLIBC.
check_glibc() {
    local bin=$1 highest
    highest=$(readelf -V -W "$bin" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -uV | tail -1)
    [ -n "$highest" ] || { echo "no GLIBC version needs found (not dynamically linked against glibc?)" >&2; return 1; }
    echo "highest required: GLIBC_$highest (limit $CROSS_GLIBC)"
    if [ "$(printf '%s\n%s\n' "$highest" "$CROSS_GLIBC" | sort -V | tail -1)" != "$CROSS_GLIBC" ]; then
        readelf --dyn-syms -W "$bin" | awk -v max="$CROSS_GLIBC" '
            match($0, /@GLIBC_[0-9.]+/) {
                v = substr($0, RSTART + 7, RLENGTH - 7)
                split(v, a, "."); split(max, b, ".")
                if (a[1] > b[1] || (a[1] == b[1] && a[2] + 0 > b[2] + 0))
                    for (i = 1; i <= NF; i++) if ($i ~ /@GLIBC_/) print "  " $i
            }' >&2
        echo "the symbols above need a glibc newer than $CROSS_GLIBC" >&2
        return 1
    fi
}

# check_elf BINARY armv7|aarch64: fails unless BINARY is an ELF for that
# processor (armv7: 32-bit ARM, EABI5, hard-float, as the GX and Raspberry
# Pi OS armhf need).
check_elf() {
    local bin=$1 arch=$2 header
    header=$(readelf -h "$bin")
    case $arch in
    armv7)
        grep -q 'Class:.*ELF32' <<<"$header" || { echo "$bin: not a 32-bit ELF" >&2; return 1; }
        grep -q 'Machine:.*ARM$' <<<"$header" || { echo "$bin: not an ARM binary" >&2; return 1; }
        grep -q 'Version5 EABI' <<<"$header" || { echo "$bin: not EABI version 5" >&2; return 1; }
        grep -q 'hard-float ABI' <<<"$header" || { echo "$bin: not hard-float (armhf)" >&2; return 1; }
        echo "32-bit ARM, EABI5, hard-float"
        ;;
    aarch64)
        grep -q 'Class:.*ELF64' <<<"$header" || { echo "$bin: not a 64-bit ELF" >&2; return 1; }
        grep -q 'Machine:.*AArch64' <<<"$header" || { echo "$bin: not an AArch64 binary" >&2; return 1; }
        echo "64-bit ARM (AArch64)"
        ;;
    *)
        echo "unknown processor $arch (armv7 or aarch64)" >&2
        return 1
        ;;
    esac
}
