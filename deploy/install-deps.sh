#!/bin/sh
# Installs the Debian 12 packages stickyproxy builds and tests with.
#   sh deploy/install-deps.sh           what the build and the test suite need (clang-14,
#                                       libclang-rt-14-dev and llvm-14's llvm-symbolizer are for
#                                       the sanitizer and fuzz build of tests/run_ci_suites.sh,
#                                       lintian and yamllint for the deploy tests), and the stickyproxy system
#                                       account that conf/prod.conf serves as
#   sh deploy/install-deps.sh --bench   also wrk, haproxy and nginx, for the on-demand checks in tests/load
#                                       (Debian's nginx and haproxy packages start their own services)
# Idempotent: asks apt only for what is missing, so a second run takes well under a second.
# Runs apt-get directly as root, through sudo otherwise.
set -eu

packages="build-essential cmake pkg-config libuv1-dev node-llhttp libssl-dev picojson-dev
prometheus-cpp-dev libsystemd-dev catch2 libxxhash-dev libzip-dev zlib1g-dev libshp-dev libeigen3-dev socat curl ca-certificates
chromium python3 prometheus clang-14 libclang-rt-14-dev llvm-14 lintian yamllint adduser"

case "${1:-}" in
  "") ;;
  --bench) packages="$packages wrk haproxy nginx" ;;
  *) echo "usage: sh deploy/install-deps.sh [--bench]" >&2; exit 2 ;;
esac

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ "$(id -u)" -eq 0 ]; then as_root=""; else as_root="sudo"; fi
if [ -n "$missing" ]; then
  echo "install-deps: installing$missing" >&2
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The account conf/prod.conf serves as (proxy.user), as the Debian package makes it.
if ! getent passwd stickyproxy >/dev/null; then
  $as_root adduser --system --group --no-create-home --quiet stickyproxy
fi
