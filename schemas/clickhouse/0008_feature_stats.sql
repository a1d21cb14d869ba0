-- Feature store statistics per view and minute, for Grafana: applied updates, events dropped
-- as too late, online lookups, values served and how many of them were defaults, and the
-- newest applied event time (freshness = now - max(newest_event_ms)).
CREATE TABLE IF NOT EXISTS feature_stats (
    minute           DateTime,
    view             String,
    updates          UInt64,
    late_dropped     UInt64,
    lookups          UInt64,
    lookup_values    UInt64,
    lookup_defaults  UInt64,
    newest_event_ms  Int64
) ENGINE = SummingMergeTree((updates, late_dropped, lookups, lookup_values, lookup_defaults))
PARTITION BY toYYYYMM(minute)
ORDER BY (view, minute);
