#!/usr/bin/env bash
# Arian's queue benchmark beside the BullMQ anchor, in one sitting on this machine, then ratios.
# Usage: bash bench/run.sh [RUNS]     (default 100000; needs local PostgreSQL, Redis and Node.js)
# The BullMQ anchor is copied out of ../shared/anchors (read-only) into target/anchors and uses
# Redis db 11, which it flushes; Arian uses its own key prefix and database and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-100000}
out=target/bench
mkdir -p "$out" target/anchors

cargo build --release -p arian-tests --bins
echo "== arian: $RUNS runs" >&2
./target/release/queue-bench --runs "$RUNS" > "$out/arian.json"

anchor=../shared/anchors/bullmq
if [ -d "$anchor" ] && command -v node >/dev/null; then
  rm -rf target/anchors/bullmq && cp -r "$anchor" target/anchors/ && chmod -R u+w target/anchors/bullmq
  echo "== bullmq anchor: $RUNS jobs" >&2
  (cd target/anchors/bullmq && npm ci --silent >/dev/null 2>&1 &&
    RUNS=1 N="$RUNS" QUIET_MAX_WAIT=20 ENQ_MODES=add_sequential,addBulk_1000 node bench.js enqueue process latency) \
    > "$out/bullmq.txt" 2>&1 || echo "bullmq anchor failed; see $out/bullmq.txt" >&2
fi
python3 bench/summarize.py "$out/arian.json" target/anchors/bullmq
