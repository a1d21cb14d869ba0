-- What serving logs with each prediction beyond 0003's columns: the alias that answered, the
-- shadow flag, where each input came from (JSON name → fetched/defaulted/supplied/request/
-- missing) and the instance's fields as sent (JSON; the label join reads event ids from it).
-- One column per statement: 18.16 has no ADD COLUMN IF NOT EXISTS, and the migration runner
-- treats "column already exists" on a single-column ADD COLUMN as done, so re-runs and
-- services migrating at the same time are idempotent.
ALTER TABLE predictions ADD COLUMN alias String DEFAULT '';
ALTER TABLE predictions ADD COLUMN shadow UInt8 DEFAULT 0;
ALTER TABLE predictions ADD COLUMN sources String DEFAULT '';
ALTER TABLE predictions ADD COLUMN request String DEFAULT '';
