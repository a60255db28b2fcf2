#!/usr/bin/env bash
# The C ABI check: builds libconcord (release), compiles the C example and the misuse test
# against the shared library (and the example against the static one), runs them, and runs the
# misuse test under valgrind memcheck, which must report no errors and no definite or indirect
# leaks. Installs gcc and valgrind with apt-get when they are missing (CI machines).
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

echo "== build libconcord (release)"
cargo build --release -p concord-ffi

target="${CARGO_TARGET_DIR:-target}"
lib="$(cd "$target/release" && pwd)"
out="$target/ffi-c"
mkdir -p "$out"
cflags=(-std=c11 -Wall -Werror -Iffi/include)

echo "== compile"
gcc "${cflags[@]}" examples/c/generate.c -L"$lib" -lconcord -Wl,-rpath,"$lib" -o "$out/generate"
gcc "${cflags[@]}" ffi/tests/misuse.c -L"$lib" -lconcord -Wl,-rpath,"$lib" -o "$out/misuse"
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
if command -v pkg-config >/dev/null 2>&1; then
    # shellcheck disable=SC2046 # pkg-config prints several flags on purpose
    gcc "${cflags[@]}" examples/c/generate.c \
        $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs concord) \
        -Wl,-rpath,"$prefix/lib" -o "$out/generate-installed"
    "$out/generate-installed" >/dev/null
    passed=$((passed + 1))
else
    echo "SKIP ffi pkg-config build: pkg-config not found"
fi

echo "ffi: $passed passed, 0 failed"
