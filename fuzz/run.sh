#!/usr/bin/env bash
# Builds every fuzz target once, then fuzzes each for SECONDS (default 60), starting from the
# checked-in seeds (fuzz/seeds/<target>/, read only) and the working corpus
# (fuzz/corpus/<target>/, gitignored, kept between runs). Exits non-zero on the first target
# that crashes, panics, leaks past the RSS limit or hangs, after printing the artifact path.
#
#   fuzz/run.sh          # 60 s per target (what CI runs)
#   fuzz/run.sh 20
#   TARGETS="maps api_request" fuzz/run.sh 600
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: fuzz/run.sh [SECONDS]   (a whole number of seconds per target)" >&2
    exit 64
fi

cd "$(dirname "$0")/.."
targets="${TARGETS:-$(cargo +nightly fuzz list)}"

echo "== building the fuzz targets (cargo +nightly fuzz build)"
start=$SECONDS
cargo +nightly fuzz build
echo "== built in $((SECONDS - start)) s"

host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="fuzz/target/$host/release"
logs="fuzz/corpus/logs"
mkdir -p "$logs"

summary=()
for target in $targets; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    seeds="fuzz/seeds/$target"
    mkdir -p "$corpus" "$artifacts"
    [ -d "$seeds" ] || seeds=""
    log="$logs/$target.log"
    echo "== fuzzing $target for ${seconds} s (log: $log)"
    # New inputs go to the first directory only, so the seeds stay as checked in.
    status=0
    "$bin_dir/$target" "$corpus" $seeds \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
    units="$(find "$corpus" -type f | wc -l)"
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)"
        echo "FAIL: $target (exit $status); artifact: ${artifact:-none written, see $log}" >&2
        echo "reproduce: cargo +nightly fuzz run $target ${artifact:-<artifact>}" >&2
        exit 1
    fi
    summary+=("$(printf '%-12s %10s runs %8s exec/s %6s corpus units' \
        "$target" "${runs:-?}" "${rate:-?}" "$units")")
done

echo "== 0 crashes in ${seconds} s per target"
printf '%s\n' "${summary[@]}"
