#!/usr/bin/env bash
# Runs the benchmarks and writes their tables into README.md between the bench markers.
# BENCH_RUNS=N sets the number of runs per measure (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/tini ] || [ ! -x /usr/bin/tini-static ] || [ ! -x /usr/bin/dumb-init ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tini dumb-init
fi
# The shipped agent, built alone (see benches/wrap.rs), for the size figure.
cargo build --release --bin edgegap-agent
shipped=$(mktemp)
cp target/x86_64-unknown-linux-gnu/release/edgegap-agent "$shipped"
export SHIPPED_AGENT=$shipped
table=$(mktemp)
trap 'rm -f "$table" "$shipped"' EXIT
cargo bench --bench wrap 2>/dev/null | tee "$table"
{
    echo
    echo "Measured on $(nproc) cores, $(date -u +%Y-%m-%d), with \`bench/run.sh\`:"
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
