#!/usr/bin/env bash
# Extra checks beyond the README's test command; CI runs them all.
#   scripts/check.sh clang      build and test with clang (-Werror)
#   scripts/check.sh sanitize   build and test with ASan + UBSan, halting on the first report
#   scripts/check.sh tsan       ThreadSanitizer over the suites that run the thread pool (core, nn, the convolutions)
#   scripts/check.sh valgrind   memcheck the core, nn and failure-injection suites (zero errors, zero leaks)
#   scripts/check.sh fuzz [S]   build the libFuzzer targets (tests/fuzz) and run each for S seconds
#                               (default 20; 60 or more for a real run); any crash fails the stage
#   scripts/check.sh install    install into a temporary prefix and build the nabla.h example against it
# Each stage uses its own build folder (build-<stage>) and installs what it needs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # install Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "check: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup() { # setup DIR ARGS...: configure DIR once
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
}

stage=${1:-all}
case "$stage" in
  clang)
    need clang
    CC=clang setup build-clang
    meson test -C build-clang --print-errorlogs
    ;;
  sanitize)
    need clang libclang-rt-14-dev
    CC=clang setup build-sanitize -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C build-sanitize --print-errorlogs --no-suite mpi
    # Open MPI keeps allocations until exit by design (its plugins are unloaded
    # late), so the MPI tests run without the leak check; everything else holds.
    ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C build-sanitize --print-errorlogs --suite mpi
    ;;
  tsan)
    need clang libclang-rt-14-dev
    CC=clang setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debugoptimized
    TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --print-errorlogs core nn ops_conv ops_conv_pool
    ;;
  valgrind)
    need valgrind
    # valgrind does not decode every instruction -march=native may emit (AVX-512): build generic
    setup build-valgrind -Dnative=false -Dbuildtype=debugoptimized
    suites=()
    for s in core nn nn_layers optim failinject; do [ -f "tests/test_$s.c" ] && suites+=("$s"); done
    meson test -C build-valgrind --print-errorlogs --timeout-multiplier 10 \
      --wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible -q' \
      "${suites[@]}"
    ;;
  fuzz)
    # Each target starts from a copy of its seed corpus (tests/fuzz/corpus/<name>/,
    # regenerate with build-fuzz/tests/fuzz/make_corpus tests/fuzz/corpus) and
    # runs for S seconds; 20 s is a smoke test, use 60 s or more for a real run.
    # A crash, leak, sanitizer report or hang (an input over 25 s) fails the
    # stage; the input is kept as build-fuzz/artifacts/<target>-crash-<sha1>
    # (replay: build-fuzz/tests/fuzz/<target> FILE).
    secs=${2:-20}
    need clang libclang-rt-14-dev
    CC=clang setup build-fuzz -Dfuzz=true -Db_lundef=false -Dbuildtype=debugoptimized
    targets=()
    for src in tests/fuzz/fuzz_*.c; do targets+=("tests/fuzz/$(basename "$src" .c)"); done
    ninja -C build-fuzz "${targets[@]}" >build-fuzz/ninja.log 2>&1 || { cat build-fuzz/ninja.log >&2; exit 1; }
    mkdir -p build-fuzz/artifacts
    failed=()
    for exe in build-fuzz/tests/fuzz/fuzz_*; do
      [ -f "$exe" ] && [ -x "$exe" ] || continue
      name=$(basename "$exe")
      corpus=$(mktemp -d)
      log=build-fuzz/artifacts/$name.log
      cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/" 2>/dev/null || true
      echo "fuzz: $name for ${secs}s"
      flags=() # per-target extras, one per line, '#' comments (tests/fuzz/<target>.flags)
      [ -f "tests/fuzz/$name.flags" ] && mapfile -t flags < <(grep -v -e '^#' -e '^$' "tests/fuzz/$name.flags")
      rc=0
      "$exe" "${flags[@]}" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/artifacts/$name-" "$corpus" >"$log" 2>&1 || rc=$?
      rm -rf "$corpus"
      grep -E '^#[0-9]+[[:space:]]+DONE|^Done' "$log" | sed 's/^/  /' || true
      if [ "$rc" -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $rc); log: $log" >&2
        grep -E 'ERROR|SUMMARY|Test unit written|fuzz:' "$log" | head -n 20 >&2 || true
        failed+=("$name")
      fi
    done
    if [ ${#failed[@]} -ne 0 ]; then
      echo "fuzz: failures in ${failed[*]}" >&2
      exit 1
    fi
    ;;
  install)
    scripts/install_check.sh
    ;;
  all)
    for s in install clang sanitize tsan valgrind fuzz; do "$0" "$s"; done
    ;;
  *)
    echo "usage: scripts/check.sh [clang|sanitize|tsan|valgrind|fuzz [SECONDS]|install|all]" >&2
    exit 2
    ;;
esac
