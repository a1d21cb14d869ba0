-- Every rebuild of a view's online state from the event log after the features service found
-- the online store had lost it (see services/features/README.md, "Online-store loss"): when
-- it was detected, why, and what the rebuild replayed. feature_stats keeps per-minute sums;
-- a rebuild is an event with its own reason, so it has a table of its own.
CREATE TABLE IF NOT EXISTS feature_rebuilds (
    view          String,
    view_version  String,
    detected_at   DateTime,
    reason        String,
    events        UInt64,
    entities      UInt64,
    cut_ms        Int64,
    elapsed_ms    UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(detected_at)
ORDER BY (view, detected_at);
