#!/usr/bin/env bash
# Builds libhct (release) and installs it under PREFIX for C programs:
#   PREFIX/include/hct.h, PREFIX/lib/libhct.a, PREFIX/lib/libhct.so, PREFIX/lib/pkgconfig/hct.pc
# Then `PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs hct` links the shared
# library and `pkg-config --static --cflags --libs hct` the static one. Finally compiles and
# runs a small C program both ways, so a broken install fails here and not in a user's build.
#
# usage: ggml-kernels/install.sh PREFIX [--target TRIPLE]
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 PREFIX [--target TRIPLE]" >&2
    exit 2
fi
prefix="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
crate_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$crate_dir/.."

cargo build --release --locked -p hct-kernels "$@"
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
if [ "${1:-}" = "--target" ]; then
    out_dir="$target_dir/$2/release"
else
    out_dir="$target_dir/release"
fi
version="$(cargo pkgid -p hct-kernels | sed 's/.*[@#]//')"

# What a program linking libhct.a needs from the system, as rustc reports it for this target.
libs_private="$(cargo rustc --release --locked -p hct-kernels --lib --crate-type staticlib "$@" \
    -- --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | tail -n 1)"
if [ -z "$libs_private" ]; then
    echo "install.sh: rustc did not report native-static-libs" >&2
    exit 1
fi

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 "$crate_dir/include/hct.h" "$prefix/include/hct.h"
install -m 0644 "$out_dir/libhct.a" "$prefix/lib/libhct.a"
install -m 0755 "$out_dir/libhct.so" "$prefix/lib/libhct.so"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs_private|" \
    "$crate_dir/hct.pc.in" > "$prefix/lib/pkgconfig/hct.pc"

# Self-check: compile against the installed header, link both ways, run.
if [ "${1:-}" != "--target" ]; then
    check_dir="$(mktemp -d)"
    trap 'rm -rf "$check_dir"' EXIT
    cat > "$check_dir/check.c" <<'C'
#include <stdio.h>
#include "hct.h"
int main(void) {
    hct_version_info v = hct_version();
    if (v.library_major != HCT_LIBRARY_VERSION_MAJOR || v.library_minor != HCT_LIBRARY_VERSION_MINOR ||
        hct_codec_traits_find("int4_opt_v1") == NULL) {
        printf("installed header and library disagree\n");
        return 1;
    }
    printf("%s, isa %s\n", v.text, hct_isa_name(hct_active_isa()));
    return 0;
}
C
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Werror "$check_dir/check.c" -o "$check_dir/shared" \
        $(pkg-config --cflags --libs hct) -Wl,-rpath,"$prefix/lib"
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Werror "$check_dir/check.c" -o "$check_dir/static" \
        $(pkg-config --cflags hct) "$prefix/lib/libhct.a" \
        $(pkg-config --static --libs-only-l hct | sed 's/-lhct//')
    "$check_dir/shared" >/dev/null
    "$check_dir/static"
fi
echo "installed libhct $version under $prefix (pkg-config file: $prefix/lib/pkgconfig/hct.pc)"
