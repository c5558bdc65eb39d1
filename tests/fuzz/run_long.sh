#!/bin/bash
# Runs every fuzz target (or those named) for DURATION seconds each, JOBS at a time (default: one
# per core), in a build made with -DSTICKYPROXY_FUZZ=ON:
#
#   tests/fuzz/run_long.sh DURATION [BUILD_DIR [TARGET...]]     e.g. tests/fuzz/run_long.sh 3600 build-fuzz
#
# Everything is written under BUILD_DIR/fuzz/long/<target>/: the corpus (seeded from
# tests/fuzz/corpus/<target>/ and kept between runs, so each run goes on from the last), the log,
# and any finding as crash-*, leak-*, timeout-* or oom-*. The source tree is never written.
# Exits non-zero when a target found something; reproduce with BUILD_DIR/fuzz/fuzz_<target> FILE.
# A timeout counts only when its input is slow alone as well (see run_one).
set -eu
if [ $# -lt 1 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
duration=$1
build=${2:-build-fuzz}
[ $# -ge 2 ] && shift 2 || shift $#
here=$(cd "$(dirname "$0")" && pwd)
jobs=${JOBS:-$(nproc)}
targets=${*:-$(cd "$here/corpus" && ls)}
out="$build/fuzz/long"
mkdir -p "$out"
rm -f "$out/.failed"

for target in $targets; do
  if [ ! -x "$build/fuzz/fuzz_$target" ]; then
    echo "no $build/fuzz/fuzz_$target: build it (cmake --build $build --target fuzz_$target)" >&2
    exit 2
  fi
done

# The zip, csv, shapefile and state_file targets write each input to a file: in memory when we can.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
run_one() {
  target=$1
  work="$out/$target"
  mkdir -p "$work/corpus"
  cp -n "$here/corpus/$target"/* "$work/corpus/" 2>/dev/null || true
  dict_name=$target
  case $target in request_head|response_head|chunked_body) dict_name=http ;; esac
  dict=
  if [ -f "$here/dict/$dict_name.dict" ]; then dict="-dict=$here/dict/$dict_name.dict"; fi
  echo "$(date -u +%H:%M:%S) $target: ${duration}s"
  # libFuzzer's -timeout is wall-clock time: on a busy machine (or under nice) an input can
  # pass it without being slow. A timeout is a finding only when its input is slow again alone;
  # otherwise the run goes on for the time left, from the corpus it has grown.
  : >"$work/log"
  started=$(date +%s)
  left=$duration
  while [ "$left" -gt 0 ]; do
    if "$build/fuzz/fuzz_$target" -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
         -artifact_prefix="$work/" -print_final_stats=1 $dict "$work/corpus" >>"$work/log" 2>&1; then
      echo "$(date -u +%H:%M:%S) $target: nothing found ($(grep -c . "$work/log") log lines, corpus $(ls "$work/corpus" | wc -l) files)"
      return 0
    fi
    for finding in "$work"/crash-* "$work"/leak-* "$work"/oom-*; do
      if [ -e "$finding" ]; then
        echo "$(date -u +%H:%M:%S) $target: FOUND $finding, see $work/log"
        return 1
      fi
    done
    if ! ls "$work"/timeout-* >/dev/null 2>&1; then
      echo "$(date -u +%H:%M:%S) $target: the fuzzer failed without a finding, see $work/log"
      return 1
    fi
    for finding in "$work"/timeout-*; do
      if ! "$build/fuzz/fuzz_$target" -timeout=10 -rss_limit_mb=2048 "$finding" >>"$work/log" 2>&1; then
        echo "$(date -u +%H:%M:%S) $target: FOUND $finding (slow alone too), see $work/log"
        return 1
      fi
      echo "$(date -u +%H:%M:%S) $target: $(basename "$finding") runs fast alone (the machine was busy); going on"
      rm -f "$finding"
    done
    left=$((duration - ($(date +%s) - started)))
  done
  echo "$(date -u +%H:%M:%S) $target: nothing found (corpus $(ls "$work/corpus" | wc -l) files)"
}

failed=0
running=0
for target in $targets; do
  run_one "$target" || echo "$target" >>"$out/.failed" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
if [ -s "$out/.failed" ]; then
  echo "findings in: $(tr '\n' ' ' <"$out/.failed")"
  rm -f "$out/.failed"
  exit 1
fi
echo "all targets ran ${duration}s without a finding"
