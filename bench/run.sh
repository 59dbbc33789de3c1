#!/usr/bin/env bash
# Arian's queue benchmark beside the BullMQ anchor, in one sitting on this machine, then ratios.
# Usage: bash bench/run.sh [JOBS]     (default 100000; needs local PostgreSQL, Redis and Node.js)
# ARIAN_BENCH_SKIP=1 reuses target/bench/arian.json and only runs the anchor.
# The BullMQ anchor is copied out of ../shared/anchors (read-only) into target/anchors and uses
# Redis db 11, which it flushes; Arian uses its own key prefix and database and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${1:-100000}
out=target/bench
mkdir -p "$out" target/anchors

if [ -z "${ARIAN_BENCH_SKIP:-}" ]; then
cargo build --release -p arian-tests --bins
echo "== arian: $JOBS runs" >&2
./target/release/queue-bench --runs "$JOBS" > "$out/arian.json"
fi

anchor=../shared/anchors/bullmq
if [ -d "$anchor" ] && command -v node >/dev/null; then
  rm -rf target/anchors/bullmq && cp -r "$anchor" target/anchors/ && chmod -R u+w target/anchors/bullmq
  echo "== bullmq anchor: $JOBS jobs" >&2
  (cd target/anchors/bullmq && npm ci --silent >/dev/null 2>&1 &&
    for phase in enqueue process latency; do
      N="$JOBS" RUNS=1 QUIET_MAX_WAIT=20 ENQ_MODES=add_sequential,addBulk_1000 node bench.js "$phase"
    done) \
    > "$out/bullmq.txt" 2>&1 || echo "bullmq anchor failed; see $out/bullmq.txt" >&2
fi
python3 bench/summarize.py "$out/arian.json" target/anchors/bullmq
