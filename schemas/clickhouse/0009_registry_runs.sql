-- The registry's searchable projection of runs. NATS KV holds the truth; every write of a run
-- is projected here with its KV revision, so the newest snapshot wins on merge and a replay
-- collapses. Latest metric values, params and tags are parallel arrays (no Map type on old
-- ClickHouse): metrics.acc is metric_values[indexOf(metric_keys, 'acc')]. A search selects
-- run ids here and reads the documents from the KV.
CREATE TABLE IF NOT EXISTS registry_runs (
    experiment_id    String,
    run_id           String,
    run_name         String,
    user_id          String,
    status           String,
    lifecycle_stage  String,
    start_time       Int64,
    end_time         Nullable(Int64),
    artifact_uri     String,
    metric_keys      Array(String),
    metric_values    Array(Float64),
    param_keys       Array(String),
    param_values     Array(String),
    tag_keys         Array(String),
    tag_values       Array(String),
    revision         UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (experiment_id, run_id);
