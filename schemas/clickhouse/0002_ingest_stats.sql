-- Per stream, per minute, per outcome counts for Grafana. outcome is accepted, rejected or
-- duplicate; reason is a low-cardinality rejection key such as "/amount: minimum" ('' when
-- accepted). Summed at merge time: query with sum(events) ... GROUP BY.
CREATE TABLE IF NOT EXISTS ingest_stats (
    minute     DateTime,
    stream     String,
    transport  String,
    outcome    String,
    reason     String,
    events     UInt64
) ENGINE = SummingMergeTree(events)
PARTITION BY toYYYYMM(minute)
ORDER BY (stream, minute, outcome, reason, transport);
