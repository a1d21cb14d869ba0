-- Every alias move of the registry (champion, challenger, ...), projected from its audit
-- stream MODEL_ALIAS_AUDIT: promotions, rollbacks and deletions (version 0) in order, for the
-- promotion timeline on dashboards. NATS holds the truth; a move's row never changes, and
-- the key names the move (the model's name at the time, the alias, the alias key's KV
-- revision), so a replayed projection, or two registry processes projecting the same
-- stream, collapse on merge (read with FINAL). audit_seq is the stream sequence the
-- projection resumes after. run_id and trigger are the promoted version's lineage (empty
-- for a deletion); event_id is the alias_moved/alias_deleted event's id on the Kafka topic
-- `registry`.
CREATE TABLE IF NOT EXISTS registry_alias_history (
    model        String,
    model_id     String,
    alias        String,
    version      UInt32,
    previous     UInt32,
    action       String,
    actor        String,
    reason       String,
    run_id       String,
    trigger      String,
    event_id     String,
    moved_at     DateTime,
    moved_at_ms  Int64,
    revision     UInt64,
    audit_seq    UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(moved_at)
ORDER BY (model, alias, revision);
