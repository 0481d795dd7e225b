-- When the snapshot that the host's facts come from was collected (agent
-- clock), so that a late, older snapshot (a retry, an agent's backlog)
-- does not overwrite newer facts.
ALTER TABLE hosts ADD COLUMN collected_at INTEGER NOT NULL DEFAULT 0;
