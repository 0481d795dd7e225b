//! Alert rules, alerts and silences in SQLite, through the one writer like
//! everything else (the statements are shared with PostgreSQL:
//! [`crate::store::alerts::sql`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::alerts::{AlertRule, Silence};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::errors::Classify;
use super::SqliteStore;
use crate::store::alerts::{
    self, alert_record, alert_rule, filter_clause, rule_spec, silence, silence_body, sql,
    sqlite_text, AlertColumns, AlertFilter, AlertRecord, AlertStore, AlertWrite, FlapHistory,
    RuleRefused,
};
use crate::store::chain::nanos;
use crate::store::StoreResult;

pub use alerts::TABLES;

/// Gives an alert table made before flap damping its columns
/// ([`alerts::FLAP_COLUMNS`]), in one transaction; nothing when it has
/// them. Run at every open, after [`TABLES`].
pub fn add_flap_columns(conn: &Connection) -> StoreResult<()> {
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('alert') WHERE name = 'fired_at'",
            [],
            |row| row.get(0),
        )
        .doing("cannot read the alert table's columns")?;
    if has > 0 {
        return Ok(());
    }
    conn.execute_batch(&format!("BEGIN; {} COMMIT;", alerts::FLAP_COLUMNS))
        .doing("cannot add flap damping's columns to the alert table")
}

fn rule_row(row: &Row<'_>) -> rusqlite::Result<(String, i64, i64, i64, String, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

type AlertRow = (String, i64, i64, Option<i64>, Option<i64>, String);

fn alert_row(row: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn decode_alerts(rows: Vec<AlertRow>) -> StoreResult<Vec<AlertRecord>> {
    rows.into_iter()
        .map(|(s, r, o, c, n, b)| alert_record(s, r, o, c, n, &b))
        .collect()
}

fn decode_rules(rows: Vec<(String, i64, i64, i64, String, String)>) -> StoreResult<Vec<AlertRule>> {
    rows.into_iter()
        .map(|(id, v, c, u, by, spec)| alert_rule(id, v, c, u, by, &spec))
        .collect()
}

fn query_alerts(
    conn: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<AlertRecord>> {
    let rows = conn
        .prepare_cached(&format!("SELECT {} FROM alert {tail}", sql::ALERT_COLUMNS))
        .and_then(|mut s| {
            s.query_map(params, alert_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .doing("cannot read the alerts")?;
    decode_alerts(rows)
}

fn insert_version(conn: &Connection, rule: &AlertRule, spec: &str) -> StoreResult<()> {
    conn.prepare_cached(&sqlite_text(sql::INSERT_RULE_VERSION))
        .and_then(|mut s| {
            s.execute(params![
                rule.id,
                rule.version,
                nanos(rule.created_at),
                nanos(rule.updated_at),
                rule.updated_by,
                spec
            ])
        })
        .doing("cannot store the rule's version")
        .map(drop)
}

fn write_one(conn: &Connection, write: &AlertWrite, now: i64) -> StoreResult<bool> {
    let c = AlertColumns::of(&write.record)?;
    let applied = if write.forget {
        conn.prepare_cached(&sqlite_text(sql::FORGET_ALERT))
            .and_then(|mut s| s.execute(params![c.id, c.revision, c.observed_at]))
    } else {
        let statement = if c.revision == 0 {
            sql::INSERT_ALERT
        } else {
            sql::UPDATE_ALERT
        };
        conn.prepare_cached(&sqlite_text(statement))
            .and_then(|mut s| {
                let columns = params![
                    c.id,
                    c.rule_id,
                    c.host_id,
                    c.subject,
                    c.state,
                    c.since,
                    c.resolved_at,
                    c.observed_at,
                    c.clear_since,
                    c.notified_at,
                    c.body,
                    c.fired_at,
                    c.flapping,
                ];
                if c.revision == 0 {
                    s.execute(columns)
                } else {
                    let mut all: Vec<&dyn rusqlite::ToSql> = columns.to_vec();
                    all.push(&c.revision);
                    s.execute(params_from_iter(all))
                }
            })
    }
    .doing("cannot store an alert")?
        == 1;
    if applied && !write.forget && c.state == "firing" {
        conn.prepare_cached(&sqlite_text(sql::TAKE_FLAP_MARK))
            .and_then(|mut s| s.execute(params![c.rule_id, c.host_id, c.subject, c.id]))
            .doing("cannot move an alert's flapping mark")?;
    }
    if applied {
        for delivery in &write.deliveries {
            conn.prepare_cached(&sqlite_text(sql::INSERT_DELIVERY))
                .and_then(|mut s| {
                    s.execute(params![
                        delivery.id,
                        delivery.channel_id,
                        delivery.body,
                        now
                    ])
                })
                .doing("cannot queue a notification")?;
        }
    }
    Ok(applied)
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn rules(&self) -> StoreResult<Vec<AlertRule>> {
        let rows = self
            .read(|conn| {
                conn.prepare_cached(&format!(
                    "SELECT {} FROM alert_rule ORDER BY id",
                    sql::RULE_COLUMNS
                ))
                .and_then(|mut s| s.query_map([], rule_row)?.collect::<Result<Vec<_>, _>>())
                .doing("cannot read the rules")
            })
            .await?;
        let mut rules = decode_rules(rows)?;
        rules.sort_by(|a, b| a.spec.name.cmp(&b.spec.name).then(a.id.cmp(&b.id)));
        Ok(rules)
    }

    async fn rule_versions(&self, id: &str) -> StoreResult<Vec<AlertRule>> {
        let id = id.to_owned();
        let rows = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {} FROM alert_rule_version WHERE id = ?1 ORDER BY version",
                    sql::RULE_COLUMNS
                ))
                .and_then(|mut s| s.query_map([id], rule_row)?.collect::<Result<Vec<_>, _>>())
                .doing("cannot read the rule's versions")
            })
            .await?;
        decode_rules(rows)
    }

    async fn create_rule(&self, rule: &AlertRule) -> StoreResult<()> {
        let rule = rule.clone();
        let spec = rule_spec(&rule)?;
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(&sqlite_text(sql::INSERT_RULE))
                        .and_then(|mut s| {
                            s.execute(params![
                                rule.id,
                                rule.version,
                                nanos(rule.created_at),
                                nanos(rule.updated_at),
                                rule.updated_by,
                                spec
                            ])
                        })
                        .doing("cannot store the rule")?;
                    insert_version(conn, &rule, &spec)
                })
            })
        })
        .await
    }

    async fn update_rule(&self, rule: &AlertRule) -> StoreResult<Result<(), RuleRefused>> {
        let rule = rule.clone();
        let spec = rule_spec(&rule)?;
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    let changed = conn
                        .prepare_cached(&sqlite_text(sql::UPDATE_RULE))
                        .and_then(|mut s| {
                            s.execute(params![
                                rule.id,
                                rule.version,
                                nanos(rule.updated_at),
                                rule.updated_by,
                                spec
                            ])
                        })
                        .doing("cannot store the rule")?;
                    if changed == 1 {
                        insert_version(conn, &rule, &spec)?;
                        return Ok(Ok(()));
                    }
                    let now: Option<i64> = conn
                        .prepare_cached(&sqlite_text(sql::RULE_VERSION))
                        .and_then(|mut s| s.query_row([&rule.id], |r| r.get(0)).optional())
                        .doing("cannot read the rule")?;
                    Ok(Err(match now {
                        None => RuleRefused::NotFound,
                        Some(v) => RuleRefused::VersionMoved {
                            now: u32::try_from(v).unwrap_or(u32::MAX),
                        },
                    }))
                })
            })
        })
        .await
    }

    async fn delete_rule(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    let gone = conn
                        .execute("DELETE FROM alert_rule WHERE id = ?1", [&id])
                        .doing("cannot delete the rule")?;
                    conn.execute("DELETE FROM alert_rule_version WHERE id = ?1", [&id])
                        .and_then(|_| {
                            conn.execute(
                                "DELETE FROM alert WHERE rule_id = ?1 AND state <> 'resolved'",
                                [&id],
                            )
                        })
                        .doing("cannot delete the rule's alerts")?;
                    Ok(gone == 1)
                })
            })
        })
        .await
    }

    async fn open_alerts(&self, host_id: Option<&str>) -> StoreResult<Vec<AlertRecord>> {
        let host_id = host_id.map(str::to_owned);
        self.read(move |conn| match host_id {
            Some(host) => query_alerts(conn, "WHERE host_id = ?1 AND state <> 'resolved'", [host]),
            None => query_alerts(conn, "WHERE state <> 'resolved'", []),
        })
        .await
    }

    async fn alerts(&self, filter: &AlertFilter) -> StoreResult<Vec<AlertRecord>> {
        let (clause, values) = filter_clause(filter);
        let tail = format!(
            "{} ORDER BY since DESC, id LIMIT {}",
            sqlite_text(&clause),
            filter.limit
        );
        self.read(move |conn| query_alerts(conn, &tail, params_from_iter(values)))
            .await
    }

    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRecord>> {
        let id = id.to_owned();
        self.read(move |conn| query_alerts(conn, "WHERE id = ?1", [id]))
            .await
            .map(|mut found| found.pop())
    }

    async fn write_alerts(&self, writes: Vec<AlertWrite>) -> StoreResult<Vec<bool>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let now = nanos(Utc::now());
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    writes
                        .iter()
                        .map(|write| write_one(conn, write, now))
                        .collect()
                })
            })
        })
        .await
    }

    async fn flap_history(
        &self,
        rule_id: &str,
        host_id: &str,
        subject: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<FlapHistory> {
        let key = [rule_id.to_owned(), host_id.to_owned(), subject.to_owned()];
        let (firings, flapping): (i64, i64) = self
            .read(move |conn| {
                conn.prepare_cached(&sqlite_text(sql::FLAP_HISTORY))
                    .and_then(|mut s| {
                        s.query_row(params![key[0], key[1], key[2], nanos(since)], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                    })
                    .doing("cannot count an alert's firings")
            })
            .await?;
        Ok(FlapHistory {
            firings: u32::try_from(firings).unwrap_or(u32::MAX),
            flapping: flapping != 0,
        })
    }

    async fn flapping_alerts(&self) -> StoreResult<Vec<AlertRecord>> {
        self.read(|conn| query_alerts(conn, sql::FLAPPING_ALERTS, []))
            .await
    }

    async fn forget_resolved(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.execute(
                        "DELETE FROM alert WHERE state = 'resolved' AND resolved_at < ?1",
                        [nanos(before)],
                    )
                    .doing("cannot forget old alerts")
                    .map(|n| n as u64)
                })
            })
        })
        .await
    }

    async fn silences(&self, now: DateTime<Utc>) -> StoreResult<Vec<Silence>> {
        let bodies = self
            .read(move |conn| {
                conn.prepare_cached("SELECT body FROM alert_silence WHERE until > ?1")
                    .and_then(|mut s| {
                        s.query_map([nanos(now)], |r| r.get::<_, String>(0))?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .doing("cannot read the silences")
            })
            .await?;
        let mut found: Vec<Silence> = bodies
            .iter()
            .map(|b| silence(b))
            .collect::<Result<_, _>>()?;
        found.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
        Ok(found)
    }

    async fn create_silence(&self, silence: &Silence) -> StoreResult<()> {
        let body = silence_body(silence)?;
        let (id, until) = (silence.id.clone(), nanos(silence.until));
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.execute(
                        "INSERT INTO alert_silence (id, until, body) VALUES (?1, ?2, ?3)",
                        params![id, until, body],
                    )
                    .doing("cannot store the silence")
                    .map(drop)
                })
            })
        })
        .await
    }

    async fn delete_silence(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.execute("DELETE FROM alert_silence WHERE id = ?1", [id])
                        .doing("cannot delete the silence")
                        .map(|n| n == 1)
                })
            })
        })
        .await
    }
}
