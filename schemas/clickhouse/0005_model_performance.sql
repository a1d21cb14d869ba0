-- Model quality per version and window once labels arrive (auc, precision, recall, ...).
CREATE TABLE IF NOT EXISTS model_performance (
    model         String,
    version       UInt32,
    metric        String,
    window_start  DateTime,
    window_end    DateTime,
    n             UInt64,
    value         Float64,
    computed_at   DateTime
) ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY (model, version, metric, window_end);
