-- When a snapshot counts as taken: the agent's collected_at, unless that is
-- after the server received it (the agent's clock runs ahead); then the
-- time it was received. "Newest" and time travel go by this, so a snapshot
-- from a clock far in the future cannot hide every later one, while a
-- backlog sent late still sorts by when it was collected.
ALTER TABLE snapshots ADD COLUMN taken_at INTEGER NOT NULL DEFAULT 0;
UPDATE snapshots SET taken_at = min(collected_at, received_at);
DROP INDEX snapshots_host_collected;
CREATE INDEX snapshots_host_taken ON snapshots (host_id, taken_at);

-- The host's facts come from its newest snapshot by the same measure.
ALTER TABLE hosts RENAME COLUMN collected_at TO taken_at;
