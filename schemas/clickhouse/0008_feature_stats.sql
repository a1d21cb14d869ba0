-- Feature store statistics per view and minute, for Grafana: applied updates, events dropped
-- as too late, online lookups, values served and how many of them were defaults, and the
-- newest applied event time (freshness = now - max(newest_event_ms)). newest_event_ms is in
-- the sort key because SummingMergeTree keeps an arbitrary value of a column it does not sum
-- when rows merge; this way rows of one minute stay apart per distinct value (a few per
-- minute), counters are read with sum() and freshness with max(), both exact.
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
ORDER BY (view, minute, newest_event_ms);
