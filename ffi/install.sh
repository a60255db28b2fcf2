#!/usr/bin/env bash
# Installs libconcord (shared and static), include/concord.h and the pkg-config file under a
# prefix, from a release build (`cargo build --release -p concord-ffi`, run first).
#
#   ffi/install.sh [PREFIX]        # default /usr/local; e.g. ffi/install.sh "$HOME/.local"
#
# Layout: PREFIX/lib/libconcord.{so,a}, PREFIX/include/concord.h,
# PREFIX/lib/pkgconfig/concord.pc. Honours CARGO_TARGET_DIR; DESTDIR is prepended to every
# path written (for packaging), not to the prefix recorded in concord.pc.
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

install -d "$dest/lib/pkgconfig" "$dest/include"
for lib in libconcord.so libconcord.dylib libconcord.a; do
    if [ -f "$lib_dir/$lib" ]; then
        install -m 0644 "$lib_dir/$lib" "$dest/lib/$lib"
    fi
done
install -m 0644 ffi/include/concord.h "$dest/include/concord.h"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" ffi/concord.pc.in \
    >"$dest/lib/pkgconfig/concord.pc"
echo "installed libconcord $version under $dest"
