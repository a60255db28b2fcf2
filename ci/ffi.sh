#!/usr/bin/env bash
# The C ABI check: builds libconcord (release), compiles the C example and the misuse test
# against the shared library (and the example against the static one), runs them, and runs the
# misuse test under valgrind memcheck, which must report no errors and no definite or indirect
# leaks; checks the shared library's SONAME (libconcord.so.MAJOR), installs under
# target/ffi-prefix and builds the example through `pkg-config --cflags --libs concord` (shared)
# and `--static` (the installed, debug-stripped archive). Installs gcc, valgrind, pkg-config
# and binutils with apt-get when they are missing (CI machines), saying so first.
#
#   ./ci/ffi.sh
#
# Uses cargo's target directory (target/, or $CARGO_TARGET_DIR when set).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
passed=0

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ffi: $* missing and apt-get unavailable: install $* first" >&2
        exit 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "== installing $*"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
command -v gcc >/dev/null 2>&1 || apt_install gcc libc6-dev
command -v valgrind >/dev/null 2>&1 || apt_install valgrind
command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config
command -v readelf >/dev/null 2>&1 || apt_install binutils

echo "== build libconcord (release)"
cargo build --release -p concord-ffi

target="${CARGO_TARGET_DIR:-target}"
lib="$(cd "$target/release" && pwd)"
out="$target/ffi-c"
mkdir -p "$out"
cflags=(-std=c11 -Wall -Werror -Iffi/include)

echo "== SONAME"
major="$(cargo pkgid -p concord-ffi)"
major="${major##*@}"
major="${major%%.*}"
soname="$(readelf -d "$lib/libconcord.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
if [ "$soname" != "libconcord.so.$major" ]; then
    echo "ffi: libconcord.so has SONAME '$soname', expected libconcord.so.$major" >&2
    exit 1
fi
echo "$soname"
passed=$((passed + 1))
# Programs linked with -lconcord ask the loader for the SONAME: give it that name beside them.
ln -sf "$lib/libconcord.so" "$out/$soname"

echo "== compile"
gcc "${cflags[@]}" examples/c/generate.c -L"$lib" -lconcord -Wl,-rpath,"$(cd "$out" && pwd)" \
    -o "$out/generate"
gcc "${cflags[@]}" ffi/tests/misuse.c -L"$lib" -lconcord -Wl,-rpath,"$(cd "$out" && pwd)" \
    -o "$out/misuse"
# The static library needs the system libraries Rust's std links (rustc --print native-static-libs).
gcc "${cflags[@]}" examples/c/generate.c "$lib/libconcord.a" -lpthread -ldl -lm -o "$out/generate-static"

echo "== examples/c/generate.c (shared)"
"$out/generate"
passed=$((passed + 1))
echo "== examples/c/generate.c (static)"
"$out/generate-static" >/dev/null
passed=$((passed + 1))
echo "== ffi/tests/misuse.c"
"$out/misuse"
passed=$((passed + 1))

echo "== ffi/tests/misuse.c under valgrind"
valgrind --quiet --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
    --suppressions=ffi/valgrind.supp "$out/misuse"
passed=$((passed + 1))

echo "== install (ffi/install.sh) and build through pkg-config"
prefix="$(cd "$target" && pwd)/ffi-prefix"
rm -rf "$prefix"
ffi/install.sh "$prefix"
pc=(env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config)
echo "pkg-config --cflags --libs concord: $("${pc[@]}" --cflags --libs concord)"
# shellcheck disable=SC2046 # pkg-config prints several flags on purpose
gcc "${cflags[@]}" examples/c/generate.c $("${pc[@]}" --cflags --libs concord) \
    -Wl,-rpath,"$prefix/lib" -o "$out/generate-installed"
if ! readelf -d "$out/generate-installed" | grep -q "NEEDED.*\[$soname\]"; then
    echo "ffi: the installed build does not ask for $soname" >&2
    exit 1
fi
"$out/generate-installed" >/dev/null
passed=$((passed + 1))
# The static archive alone (the linker prefers it to the .so only when told: -Wl,-Bstatic).
# shellcheck disable=SC2046
gcc "${cflags[@]}" examples/c/generate.c $("${pc[@]}" --cflags concord) \
    -L"$prefix/lib" -Wl,-Bstatic -lconcord -Wl,-Bdynamic \
    $("${pc[@]}" --static --libs-only-other --libs-only-l concord | sed 's/-lconcord//') \
    -o "$out/generate-installed-static"
"$out/generate-installed-static" >/dev/null
passed=$((passed + 1))
echo "installed: libconcord.a $(du -h "$prefix/lib/libconcord.a" | cut -f1) (debug-stripped), \
libconcord.so.$(cargo pkgid -p concord-ffi | sed 's/.*@//') $(du -hL "$prefix/lib/libconcord.so" | cut -f1)"

echo "ffi: $passed passed, 0 failed"
