-- Training-serving skew: for a sample of logged predictions, each feature value serving
-- fetched from the online store against the same feature recomputed point in time from the
-- offline store at the prediction's time. mismatches / n should be 0.
CREATE TABLE IF NOT EXISTS skew_checks (
    model         String,
    version       UInt32,
    feature       String,
    window_start  DateTime,
    window_end    DateTime,
    n             UInt64,
    mismatches    UInt64,
    example       String,
    checked_at    DateTime
) ENGINE = ReplacingMergeTree(checked_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY (model, version, feature, window_end);
