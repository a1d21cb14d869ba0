-- Every logged metric point of every run, append-only. The key covers the whole point, so a
-- replayed projection (or an identical point logged twice) collapses on merge.
CREATE TABLE IF NOT EXISTS registry_metric_history (
    run_id     String,
    key        String,
    step       Int64,
    timestamp  Int64,
    value      Float64
) ENGINE = ReplacingMergeTree
ORDER BY (run_id, key, step, timestamp, value);
