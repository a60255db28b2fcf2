#!/usr/bin/env bash
# Installs libconcord (shared and static), include/concord.h and the pkg-config file under a
# prefix, from a release build (`cargo build --release -p concord-ffi`, run first).
#
#   ffi/install.sh [PREFIX]        # default /usr/local; e.g. ffi/install.sh "$HOME/.local"
#
# Layout: PREFIX/lib/libconcord.so.X.Y.Z with the links libconcord.so.X (its SONAME, what
# programs load) and libconcord.so (what `-lconcord` finds), PREFIX/lib/libconcord.a (debug
# sections stripped: the Rust standard library's debug info is most of what strip removes),
# PREFIX/include/concord.h, PREFIX/lib/pkgconfig/concord.pc. Honours CARGO_TARGET_DIR; DESTDIR
# is prepended to every path written (for packaging), not to the prefix recorded in concord.pc.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="${1:-/usr/local}"
case "$prefix" in
    /*) ;;
    *) prefix="$PWD/$prefix" ;;
esac
dest="${DESTDIR:-}$prefix"
lib_dir="${CARGO_TARGET_DIR:-target}/release"
if [ ! -f "$lib_dir/libconcord.a" ]; then
    echo "install: $lib_dir/libconcord.a not found: run cargo build --release -p concord-ffi" >&2
    exit 1
fi
pkgid="$(cargo pkgid -p concord-ffi)"
version="${pkgid##*@}"

major="${version%%.*}"

install -d "$dest/lib/pkgconfig" "$dest/include"
if [ -f "$lib_dir/libconcord.so" ]; then
    install -m 0755 "$lib_dir/libconcord.so" "$dest/lib/libconcord.so.$version"
    ln -sf "libconcord.so.$version" "$dest/lib/libconcord.so.$major"
    ln -sf "libconcord.so.$major" "$dest/lib/libconcord.so"
fi
if [ -f "$lib_dir/libconcord.dylib" ]; then
    install -m 0755 "$lib_dir/libconcord.dylib" "$dest/lib/libconcord.$major.dylib"
    ln -sf "libconcord.$major.dylib" "$dest/lib/libconcord.dylib"
fi
install -m 0644 "$lib_dir/libconcord.a" "$dest/lib/libconcord.a"
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$dest/lib/libconcord.a"
fi
install -m 0644 ffi/include/concord.h "$dest/include/concord.h"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" ffi/concord.pc.in \
    >"$dest/lib/pkgconfig/concord.pc"
echo "installed libconcord $version under $dest"
