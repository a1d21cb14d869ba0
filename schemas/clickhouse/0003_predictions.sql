-- Every served prediction, written by the monitor from the predictions topic; deduplicated
-- by (model, request_id).
CREATE TABLE IF NOT EXISTS predictions (
    request_id  String,
    model       String,
    version     UInt32,
    entity      String,
    features    String,
    output      String,
    score       Float64,
    ts          DateTime,
    ts_ms       Int64,
    latency_us  UInt32
) ENGINE = ReplacingMergeTree(ts_ms)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (model, request_id);
