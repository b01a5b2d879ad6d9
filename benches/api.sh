#!/usr/bin/env bash
# Benchmark of the local API, loopback only, bounded in time:
#   1. GET /healthz throughput and p99 latency of the agent vs a bare hyper server
#      (benches/bare_hyper.rs: same hyper setup, no routing), measured with wrk in the same run,
#      alternating the two servers ROUNDS times;
#   2. idle RSS (VmRSS) and idle CPU (utime+stime ticks, all threads) and context switches of
#      a freshly started agent with its API up, over IDLE_SECONDS.
# Usage: benches/api.sh   (env: DURATION=10s CONNECTIONS=64 THREADS=2 ROUNDS=2 IDLE_SECONDS=60)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
IDLE_SECONDS=${IDLE_SECONDS:-60}

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null
fi

# Both servers as shipped: the dist profile. Built one at a time, so the example's
# dev-dependencies do not add features to the agent's build.
cargo build --profile dist -p edgegap-agent --bin edgegap-agent
WORK=$(mktemp -d)
cp target/x86_64-unknown-linux-gnu/dist/edgegap-agent "$WORK/edgegap-agent"
cargo build --profile dist --example bare-hyper
BARE=target/x86_64-unknown-linux-gnu/dist/examples/bare-hyper
# The game the agent wraps is the tests' fake game (not measured).
cargo build --release --bin fake-game
GAME=target/x86_64-unknown-linux-gnu/release/fake-game
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Waits (up to 10 s) for a line matching $2 in file $1 and prints it.
wait_line() {
    for _ in $(seq 1000); do
        if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.01
    done
    echo "timed out waiting for /$2/ in $1" >&2
    return 1
}

start_agent() { # $1: name of the output file
    "$WORK/edgegap-agent" --api-addr 127.0.0.1:0 --log-level warn -- \
        "$GAME" --print-env EDGEGAP_AGENT_URL >"$WORK/$1" 2>&1 &
    PIDS+=($!)
    AGENT_PID=$!
    AGENT_URL=$(wait_line "$WORK/$1" '^ENV EDGEGAP_AGENT_URL=' | sed 's/^ENV EDGEGAP_AGENT_URL=//')
}

proc_ticks() { # utime + stime of every thread of pid $1
    awk '{ s += $14 + $15 } END { print s }' /proc/"$1"/task/*/stat
}
proc_switches() { # voluntary + involuntary context switches of every thread of pid $1
    cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'
}
rss_kib() { awk '/^VmRSS/ { print $2 }' /proc/"$1"/status; }

echo "== binary size: $(stat -c %s "$WORK/edgegap-agent") bytes (edgegap-agent, dist profile, static)"

# --- idle, on a fresh agent -------------------------------------------------------------
start_agent idle.out
IDLE_PID=$AGENT_PID
sleep 1
ticks0=$(proc_ticks "$IDLE_PID"); sw0=$(proc_switches "$IDLE_PID")
sleep "$IDLE_SECONDS"
ticks1=$(proc_ticks "$IDLE_PID"); sw1=$(proc_switches "$IDLE_PID")
echo "== idle over ${IDLE_SECONDS}s: RSS $(rss_kib "$IDLE_PID") KiB, CPU $((ticks1 - ticks0)) ticks" \
     "(1 tick = 1/$(getconf CLK_TCK) s), context switches $((sw1 - sw0))"
kill -TERM "$IDLE_PID"

# --- throughput: bare hyper vs the agent, alternating ----------------------------------
"$BARE" >"$WORK/bare.out" 2>&1 &
PIDS+=($!)
BARE_URL="http://$(wait_line "$WORK/bare.out" '^LISTENING ' | sed 's/^LISTENING //')"
start_agent load.out

run_wrk() { # $1 label, $2 url; prints "label rps p99"
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2/healthz")
    local rps p99 errors
    rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    errors=$(echo "$out" | grep -E 'Non-2xx|Socket errors' || true)
    echo "$1 $rps $p99 ${errors:-no-errors}"
}

to_us() { # wrk latency (e.g. 1.23ms, 850.00us, 1.2s) -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") print n; else if (u == "ms") print n * 1000; else if (u == "s") print n * 1000000; else print n
    }'
}

echo "== GET /healthz, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds"
declare -a BARE_RPS AGENT_RPS BARE_P99 AGENT_P99
for round in $(seq "$ROUNDS"); do
    read -r _ rps p99 err < <(run_wrk bare "$BARE_URL")
    echo "round $round bare-hyper: $rps req/s, p99 $p99 ($err)"
    BARE_RPS+=("$rps"); BARE_P99+=("$(to_us "$p99")")
    read -r _ rps p99 err < <(run_wrk agent "$AGENT_URL")
    echo "round $round agent:      $rps req/s, p99 $p99 ($err)"
    AGENT_RPS+=("$rps"); AGENT_P99+=("$(to_us "$p99")")
done
echo "== agent RSS after load: $(rss_kib "$AGENT_PID") KiB"

mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.0f", s / NR }'; }
b=$(mean "${BARE_RPS[@]}"); a=$(mean "${AGENT_RPS[@]}")
bp=$(mean "${BARE_P99[@]}"); ap=$(mean "${AGENT_P99[@]}")
echo "== mean: bare-hyper $b req/s p99 ${bp}us; agent $a req/s p99 ${ap}us"
awk -v a="$a" -v b="$b" -v ap="$ap" -v bp="$bp" \
    'BEGIN { printf "== throughput ratio agent/bare = %.2f (target >= 0.8); p99 ratio agent/bare = %.2f\n", a / b, ap / bp }'

# The Markdown table benches/run.sh puts in the README.
echo
echo "| \`GET /healthz\`, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, mean of $ROUNDS rounds | bare hyper | edgegap-agent | agent / bare | target |"
echo "|---|---|---|---|---|"
awk -v a="$a" -v b="$b" 'BEGIN { printf "| throughput | %d req/s | %d req/s | **%.2f×** | ≥ 0.8× |\n", b, a, a / b }'
awk -v ap="$ap" -v bp="$bp" 'BEGIN { printf "| p99 latency | %d µs | %d µs | %.2f× | |\n", bp, ap, ap / bp }'
echo "| agent RSS after the load | | $(rss_kib "$AGENT_PID") KiB | | |"
