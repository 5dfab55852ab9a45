#!/usr/bin/env bash
# Installs every system dependency of Ternion from Debian packages.
# Idempotent and non-interactive: packages already present are skipped by apt.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libabsl-dev libgoogle-glog-dev libyaml-cpp-dev
  libopenblas-openmp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libxxhash-dev xxhash
  python3 curl
  libcpp-httplib-dev gnuplot-nox
  slurm-wlm slurm-wlm-basic-plugins munge
  fortunes
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "setup: all dependencies present"
