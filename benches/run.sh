#!/usr/bin/env bash
# Runs every benchmark (benches/wrap.rs: the agent vs tini and dumb-init; benches/lifecycle.rs:
# match end to DELETE; benches/api.sh: /healthz vs a bare hyper server) and writes their tables
# into README.md between the bench markers. Loopback only, bounded in time.
# BENCH_RUNS=N sets the number of runs per measure (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/tini ] || [ ! -x /usr/bin/tini-static ] || [ ! -x /usr/bin/dumb-init ] || ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tini dumb-init wrk
fi
# The agent every benchmark measures: as shipped (dist profile), built alone so no
# dev-dependency adds features to it.
cargo build --profile dist -p edgegap-agent --bin edgegap-agent
shipped=$(mktemp)
# install, not cp: cp onto mktemp's file keeps its mode, 0600, and the copy would not run.
install -m 0755 target/x86_64-unknown-linux-gnu/dist/edgegap-agent "$shipped"
export SHIPPED_AGENT=$shipped
table=$(mktemp)
log=$(mktemp)
trap 'rm -f "$table" "$shipped" "$log"' EXIT
# cargo's own output is kept out of the table, but shown if a benchmark fails.
bench() { cargo bench --bench "$1" 2>"$log" || { cat "$log" >&2; return 1; }; }
{
    bench wrap
    echo
    bench lifecycle
    echo
    benches/api.sh | grep '^|'
} | tee "$table"
{
    echo
    echo "Measured on $(nproc) cores, $(date -u +%Y-%m-%d), with \`benches/run.sh\` (BENCH_RUNS=${BENCH_RUNS:-300}, IDLE_SECONDS=${IDLE_SECONDS:-60}):"
    echo
    cat "$table"
    echo
} > "$table.body"
python3 - "$table.body" <<'PY'
import re, sys
body = open(sys.argv[1]).read()
readme = open("README.md").read()
start, end = "<!-- bench:wrap:start -->", "<!-- bench:wrap:end -->"
new = re.sub(re.escape(start) + ".*?" + re.escape(end), start + body + end, readme, flags=re.S)
open("README.md", "w").write(new)
PY
rm -f "$table.body"
echo "README.md updated"
