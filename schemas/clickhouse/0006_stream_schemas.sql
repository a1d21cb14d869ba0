-- Every stream schema version ingest has deployed, so a changed schema is checked against
-- the last one in production (flywheel schemas check, and ingest at start-up).
CREATE TABLE IF NOT EXISTS stream_schemas (
    stream       String,
    version      UInt32,
    fingerprint  String,
    schema       String,
    deployed_at  DateTime
) ENGINE = ReplacingMergeTree(deployed_at)
ORDER BY (stream, version);
