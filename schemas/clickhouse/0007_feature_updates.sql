-- The offline store: every event the features service applied to a view, with the inputs
-- it took from it and its arrival sequence within the entity. Replaying these through the
-- same aggregation code reproduces any online value; point-in-time retrieval reads them.
-- One row per (view, view_version, entity, seq): replays collapse.
CREATE TABLE IF NOT EXISTS feature_updates (
    view           String,
    view_version   String,
    entity         String,
    seq            Int64,
    event_id       String,
    event_time     DateTime,
    event_time_ms  Int64,
    kinds          Array(UInt8),
    nums           Array(Float64),
    strs           Array(String),
    written_at     DateTime
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (view, view_version, entity, seq);
