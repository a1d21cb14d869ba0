-- The whole run document of each snapshot, so a search answers from one query instead of a
-- KV read per run.
ALTER TABLE registry_runs ADD COLUMN doc String;
