-- Drift scores per model version, kind (data, prediction, concept), feature and method, one
-- row per window; a recomputed window replaces the older row.
CREATE TABLE IF NOT EXISTS drift_metrics (
    model         String,
    version       UInt32,
    kind          String,
    feature       String,
    method        String,
    window_start  DateTime,
    window_end    DateTime,
    n             UInt64,
    score         Float64,
    threshold     Float64,
    drifted       UInt8,
    computed_at   DateTime
) ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY (model, version, kind, feature, method, window_end);
