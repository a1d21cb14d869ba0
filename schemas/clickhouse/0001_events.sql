-- The deduplicated event log of every stream, written by ingest. One row per (stream, event_id):
-- ReplacingMergeTree collapses replays at merge time; read with FINAL (or uniqExact(event_id))
-- when exact counts matter. event_time keeps seconds for partitioning and functions; the _ms
-- columns keep full precision (DateTime64 is not available on ClickHouse 18.16).
CREATE TABLE IF NOT EXISTS events (
    stream          String,
    event_id        String,
    event_time      DateTime,
    event_time_ms   Int64,
    entity          String,
    schema_version  UInt32,
    payload         String,
    ingested_at     DateTime,
    ingested_at_ms  Int64
) ENGINE = ReplacingMergeTree(ingested_at_ms)
PARTITION BY toYYYYMM(event_time)
ORDER BY (stream, event_id);
