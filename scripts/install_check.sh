#!/usr/bin/env bash
# Install nabla into a temporary prefix, then compile and run the worked example
# from nabla.h against it, found through pkg-config only. Proves packaging works.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson setup "$tmp/build" --prefix="$tmp/prefix" -Dnative=false >/dev/null
meson install -C "$tmp/build" --quiet >/dev/null
pc=$(dirname "$(find "$tmp/prefix" -name nabla.pc | head -1)")
# the program between "A complete program:" and "Modules" in nabla.h
sed -n '/A complete program:/,/Modules/p' include/nabla/nabla.h | sed '1d;$d' | sed 's/^ \*     //; s/^ \*$//' > "$tmp/example.c"
export PKG_CONFIG_PATH="$pc"
cc -std=c11 -Wall -Wextra -Werror "$tmp/example.c" $(pkg-config --cflags nabla) \
   -o "$tmp/example" $(pkg-config --libs nabla)
out=$(LD_LIBRARY_PATH="$tmp/prefix/lib:$(dirname "$pc")" "$tmp/example")
echo "install check: $out"
[ "$out" = "loss 3, dw = [1 2 3]" ] || { echo "install check: unexpected output" >&2; exit 1; }
