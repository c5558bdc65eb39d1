#!/bin/sh
# Runs one fuzz target briefly on a fresh copy of its seeds, as ctest's "fuzz: <name>" does:
#   smoke.sh FUZZER SEED_DIR WORK_DIR SECONDS
# The seeds in the source tree are never written: the target grows WORK_DIR/corpus, and a finding
# is saved as WORK_DIR/crash-*, leak-*, timeout-* or oom-* (and the test fails).
set -eu
fuzzer=$1 seeds=$2 work=$3 seconds=$4
rm -rf "$work"
mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
# tests/fuzz/dict/<name>.dict (the HTTP targets share http.dict), when there is one.
name=$(basename "$seeds")
case $name in request_head|response_head|chunked_body) name=http ;; esac
dict=
if [ -f "$seeds/../../dict/$name.dict" ]; then dict="-dict=$seeds/../../dict/$name.dict"; fi
# The zip, csv, shapefile and state_file targets write each input to a file: in memory when we can.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
# -timeout: one input running this long is a finding (a hang); -rss_limit_mb likewise for memory.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -artifact_prefix="$work/" -print_final_stats=1 $dict "$work/corpus"
