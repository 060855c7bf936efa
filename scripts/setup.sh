#!/usr/bin/env bash
# Set up nabla on Debian/Ubuntu: install the missing system packages, then
# configure the build folder (./build) if it is not configured yet. Safe to run again.
#   scripts/setup.sh            packages + data set + configure
#   NABLA_NO_DATA=1 scripts/setup.sh   skip the Fashion-MNIST data set
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(meson ninja-build pkg-config gcc libc6-dev libblis-dev libcmocka-dev libstb-dev zlib1g-dev
      libopenmpi-dev openmpi-bin  # MPI: distributed training (meson option -Dmpi)
      wamerican  # the word list of examples/words
      )
[ "${NABLA_NO_DATA:-0}" = 1 ] || pkgs+=(dataset-fashion-mnist)
# bench/compare_pytorch.py measures whole runs with GNU time (not the shell keyword)
[ -x /usr/bin/time ] || pkgs+=(time)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing packages (${missing[*]}) and no apt-get here; install them with your package manager" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
      echo "setup: need root to install ${missing[*]} (no sudo found)" >&2; exit 1
    fi
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f build/build.ninja ]; then
  meson setup build ${NABLA_MESON_ARGS:-}
fi
