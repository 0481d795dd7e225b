-- Times are integers: nanoseconds since the Unix epoch, UTC. They compare
-- and index cheaply and round-trip the wire's RFC 3339 times exactly.

-- One row per machine, keyed by its stable id; the host facts are those of
-- the newest snapshot received.
CREATE TABLE hosts (
    id TEXT PRIMARY KEY NOT NULL,
    hostname TEXT NOT NULL,
    os_name TEXT NOT NULL,
    os_version TEXT NOT NULL,
    kernel TEXT NOT NULL,
    arch TEXT NOT NULL,
    cpu_count INTEGER NOT NULL,
    memory_total_bytes INTEGER NOT NULL,
    boot_time INTEGER NOT NULL,
    agent_version TEXT NOT NULL,
    -- The agent's send interval, to tell online from offline.
    interval_ms INTEGER NOT NULL,
    -- Server clock: a wrong agent clock cannot make a host look alive.
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
) STRICT;

CREATE INDEX hosts_hostname ON hosts (hostname);

-- One row per snapshot received. `seq` is a compact local key for samples;
-- `id` is the agent's, and unique so a retried send is stored once.
CREATE TABLE snapshots (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    host_id TEXT NOT NULL REFERENCES hosts (id),
    collected_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    process_count INTEGER NOT NULL,
    cpu_percent_total REAL NOT NULL,
    memory_rss_total_bytes INTEGER NOT NULL
) STRICT;

-- The newest snapshot of a host, or the newest at or before a time.
CREATE INDEX snapshots_host_collected ON snapshots (host_id, collected_at);
-- Retention deletes by the server's clock.
CREATE INDEX snapshots_received ON snapshots (received_at);

-- A process under its identity (host, pid, start time), stored once however
-- many snapshots it appears in. Facts that exec() can change (name, exe,
-- cmd, user) are those of the newest snapshot that saw it.
CREATE TABLE processes (
    id INTEGER PRIMARY KEY,
    host_id TEXT NOT NULL REFERENCES hosts (id),
    pid INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    name TEXT NOT NULL,
    exe TEXT,
    -- The argument list as a JSON array of strings.
    cmd TEXT NOT NULL,
    user TEXT,
    -- Agent clock (collected_at of the snapshots that saw it).
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    UNIQUE (host_id, pid, start_time)
) STRICT;

-- What changes from one snapshot to the next: one row per process per
-- snapshot.
CREATE TABLE samples (
    snapshot INTEGER NOT NULL REFERENCES snapshots (seq),
    process INTEGER NOT NULL REFERENCES processes (id),
    parent_pid INTEGER,
    status TEXT NOT NULL,
    cpu_percent REAL NOT NULL,
    memory_rss_bytes INTEGER NOT NULL,
    memory_virtual_bytes INTEGER NOT NULL,
    memory_private_bytes INTEGER,
    threads INTEGER,
    handles INTEGER,
    disk_read_bytes INTEGER NOT NULL,
    disk_written_bytes INTEGER NOT NULL,
    PRIMARY KEY (snapshot, process)
) STRICT, WITHOUT ROWID;

-- A process's history, and finding processes no sample refers to any more.
CREATE INDEX samples_process ON samples (process);
-- When the snapshot that the host's facts come from was collected (agent
-- clock), so that a late, older snapshot (a retry, an agent's backlog)
-- does not overwrite newer facts.
ALTER TABLE hosts ADD COLUMN collected_at INTEGER NOT NULL DEFAULT 0;
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
