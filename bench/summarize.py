"""Prints Arian's queue benchmark beside the BullMQ anchor measured in the same sitting."""
import glob
import json
import os
import sys


def bullmq(folder):
    figures = {}
    for path in glob.glob(os.path.join(folder, "results-*.json")):
        with open(path) as f:
            for row in json.load(f)["results"]:
                figures.setdefault((row["phase"], row["mode"]), []).append(row)
    return figures


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def main():
    with open(sys.argv[1]) as f:
        arian = json.load(f)
    anchor = bullmq(sys.argv[2]) if len(sys.argv) > 2 else {}

    def anchor_value(phase, mode, key):
        return median([r.get(key) for r in anchor.get((phase, mode), [])])

    rows = [
        ("enqueue, bulk (jobs/s)", arian["enqueue"]["jobs_per_s"], anchor_value("enqueue", "addBulk_1000", "jobs_per_s")),
    ]
    for noop in arian["noop_drain"]:
        c = noop["concurrency"]
        rows.append((f"no-op drain c={c} (jobs/s)", noop["jobs_per_s"], anchor_value("process", f"worker_c{c}", "jobs_per_s")))
    full = arian["full"]
    latency = full["idle_pickup_ms"]
    rows += [
        ("idle pickup p50 (ms)", latency["p50"], anchor_value("latency", "rate100_c10", "lat_p50_ms")),
        ("idle pickup p99 (ms)", latency["p99"], anchor_value("latency", "rate100_c10", "lat_p99_ms")),
        ("worker peak RSS (MiB)", full["worker_peak_rss_mib"], anchor_value("process", "worker_c10", "peak_rss_mb")),
        (f"full drain of {full['runs']} simulated runs, {arian['workers']} workers (runs/s)", full["drain_runs_per_s"], None),
    ]
    print(f"{'figure':<62} {'arian':>12} {'bullmq':>12} {'ratio':>8}")
    for name, ours, theirs in rows:
        ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
        fmt = lambda v: f"{v:,.1f}" if isinstance(v, (int, float)) else "-"
        print(f"{name:<62} {fmt(ours):>12} {fmt(theirs):>12} {ratio:>8}")
    print(f"\nfull drain: {full['completed']} completed, {full['failed']} failed of {full['runs']}; "
          f"batch created in {full['batch_create_secs']:.1f} s, enqueued in {full['start_enqueue_secs']:.1f} s")
    print("ratio = arian / bullmq; for latency and RSS lower is better. BullMQ jobs are no-ops;"
          " Arian's full drain plays every negotiation with per-turn PostgreSQL checkpoints.")


if __name__ == "__main__":
    main()
