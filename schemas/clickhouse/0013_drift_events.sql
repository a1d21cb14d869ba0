-- Drift events the monitor decided, the record that makes publishing and alerting exactly
-- once per event id across restarts: the monitor writes the event here first, then a
-- dispatcher publishes it to the drift topic and calls the webhooks, writing a newer row with
-- published/alerted set after each. Read with FINAL.
CREATE TABLE IF NOT EXISTS drift_events (
    id             String,
    model          String,
    version        UInt32,
    kind           String,
    features       String,
    window_start   DateTime,
    window_end     DateTime,
    n              UInt64,
    detected_at    DateTime,
    event          String,
    published      UInt8,
    alerted        UInt8,
    updated_at_ms  Int64
) ENGINE = ReplacingMergeTree(updated_at_ms)
PARTITION BY toYYYYMM(detected_at)
ORDER BY (model, id);
