#!/bin/sh
# Builds the project twice and runs the test suites as CI does (.ci/run, README "Set-up"):
#   sh tests/run_ci_suites.sh
#
# 1. build/           gcc, RelWithDebInfo, warnings are errors: every ctest test (unit,
#                     integration, metrics, browser, load).
# 2. build-sanitize/  clang-14 (warnings are errors too) with AddressSanitizer + UBSan and the libFuzzer targets
#                     (STICKYPROXY_SANITIZE, STICKYPROXY_FUZZ), -O1: the unit, integration and fuzz
#                     tests, with leaks and undefined behaviour fatal. The browser and load tests
#                     are left to the first build: they check pages and throughput, not memory, and
#                     would add minutes to a run that must stay under 30 on 2 cores.
#
# Every sanitizer report goes to build-sanitize/sanitizer-reports/, whichever process wrote it:
# a test, or a proxy or worker a test started (their stderr goes to logs the tests delete). A
# report there fails the run even when no test noticed, and is printed at the end.
#
# Needs the packages of deploy/install-deps.sh (clang-14, libclang-rt-14-dev and llvm-14 among them).
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTICKYPROXY_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j2

# -O1 and line tables only: the fastest build that still runs the app's numeric code at a usable
# speed and gives stack traces with file and line. Debug keeps the asserts on.
CC=clang-14 CXX=clang++-14 cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
  -DSTICKYPROXY_SANITIZE=ON -DSTICKYPROXY_FUZZ=ON -DSTICKYPROXY_WERROR=ON
cmake --build build-sanitize -j"$jobs"

reports=$PWD/build-sanitize/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
symbolizer=
if [ -x /usr/bin/llvm-symbolizer-14 ]; then symbolizer=:external_symbolizer_path=/usr/bin/llvm-symbolizer-14; fi
status=0
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$reports/asan$symbolizer" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan$symbolizer" \
  ctest --test-dir build-sanitize --output-on-failure -j2 -R '^(unit|integration|fuzz):' || status=$?
for report in "$reports"/*; do
  [ -e "$report" ] || continue
  echo "=== sanitizer report $report" >&2
  cat "$report" >&2
  status=1
done
[ "$status" -eq 0 ] && echo "run_ci_suites: both builds passed; no sanitizer report" >&2
exit "$status"
