//! Alert rules, alerts and silences in PostgreSQL: small tables, each
//! change one short transaction; the statements are SQLite's too
//! ([`crate::store::alerts::sql`]). An alert's compare-and-swap is an
//! `UPDATE … WHERE revision = $n`: a second server's update of the same
//! row waits for the first to commit, then finds the revision moved.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::alerts::{AlertRule, Silence};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use super::accounts::write_with;
use super::errors::Classify;
use super::{read_with, start_read, PostgresStore};
use crate::store::alerts::{
    alert_record, alert_rule, filter_clause, rule_spec, silence, silence_body, sql, AlertColumns,
    AlertFilter, AlertRecord, AlertStore, AlertWrite, FlapHistory, RuleRefused,
};
use crate::store::chain::nanos;
use crate::store::{StoreError, StoreResult};

fn rules_of(rows: &[Row]) -> StoreResult<Vec<AlertRule>> {
    rows.iter()
        .map(|r| alert_rule(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

fn alerts_of(rows: &[Row]) -> StoreResult<Vec<AlertRecord>> {
    rows.iter()
        .map(|r| alert_record(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

async fn insert_version(tx: &Transaction<'_>, rule: &AlertRule, spec: &str) -> StoreResult<()> {
    tx.execute(
        sql::INSERT_RULE_VERSION,
        &[
            &rule.id,
            &i64::from(rule.version),
            &nanos(rule.created_at),
            &nanos(rule.updated_at),
            &rule.updated_by,
            &spec,
        ],
    )
    .await
    .doing("cannot store the rule's version")
    .map(drop)
}

async fn write_one(tx: &Transaction<'_>, write: &AlertWrite, now: i64) -> StoreResult<bool> {
    let c = AlertColumns::of(&write.record)?;
    let applied = if write.forget {
        tx.execute(sql::FORGET_ALERT, &[&c.id, &c.revision, &c.observed_at])
            .await
    } else {
        let mut columns: Vec<&(dyn ToSql + Sync)> = vec![
            &c.id,
            &c.rule_id,
            &c.host_id,
            &c.subject,
            &c.state,
            &c.since,
            &c.resolved_at,
            &c.observed_at,
            &c.clear_since,
            &c.notified_at,
            &c.body,
            &c.fired_at,
            &c.flapping,
        ];
        if c.revision == 0 {
            tx.execute(sql::INSERT_ALERT, &columns).await
        } else {
            columns.push(&c.revision);
            tx.execute(sql::UPDATE_ALERT, &columns).await
        }
    }
    .doing("cannot store an alert")?
        == 1;
    if applied && !write.forget && c.state == "firing" {
        tx.execute(
            sql::TAKE_FLAP_MARK,
            &[&c.rule_id, &c.host_id, &c.subject, &c.id],
        )
        .await
        .doing("cannot move an alert's flapping mark")?;
    }
    if applied {
        for delivery in &write.deliveries {
            tx.execute(
                sql::INSERT_DELIVERY,
                &[&delivery.id, &delivery.channel_id, &delivery.body, &now],
            )
            .await
            .doing("cannot queue a notification")?;
        }
    }
    Ok(applied)
}

#[async_trait]
impl AlertStore for PostgresStore {
    async fn rules(&self) -> StoreResult<Vec<AlertRule>> {
        let mut rules = read_with!(self, |tx| {
            let rows = tx
                .query(
                    &format!("SELECT {} FROM alert_rule ORDER BY id", sql::RULE_COLUMNS),
                    &[],
                )
                .await
                .doing("cannot read the rules")?;
            rules_of(&rows)
        })?;
        rules.sort_by(|a, b| a.spec.name.cmp(&b.spec.name).then(a.id.cmp(&b.id)));
        Ok(rules)
    }

    async fn rule_versions(&self, id: &str) -> StoreResult<Vec<AlertRule>> {
        read_with!(self, |tx| {
            let rows = tx
                .query(
                    &format!(
                        "SELECT {} FROM alert_rule_version WHERE id = $1 ORDER BY version",
                        sql::RULE_COLUMNS
                    ),
                    &[&id],
                )
                .await
                .doing("cannot read the rule's versions")?;
            rules_of(&rows)
        })
    }

    async fn create_rule(&self, rule: &AlertRule) -> StoreResult<()> {
        let spec = rule_spec(rule)?;
        write_with!(self, |tx| {
            tx.execute(
                sql::INSERT_RULE,
                &[
                    &rule.id,
                    &i64::from(rule.version),
                    &nanos(rule.created_at),
                    &nanos(rule.updated_at),
                    &rule.updated_by,
                    &spec,
                ],
            )
            .await
            .doing("cannot store the rule")?;
            insert_version(tx, rule, &spec).await
        })
    }

    async fn update_rule(&self, rule: &AlertRule) -> StoreResult<Result<(), RuleRefused>> {
        let spec = rule_spec(rule)?;
        write_with!(self, |tx| {
            let changed = tx
                .execute(
                    sql::UPDATE_RULE,
                    &[
                        &rule.id,
                        &i64::from(rule.version),
                        &nanos(rule.updated_at),
                        &rule.updated_by,
                        &spec,
                    ],
                )
                .await
                .doing("cannot store the rule")?;
            if changed == 1 {
                insert_version(tx, rule, &spec).await?;
                return Ok(Ok(()));
            }
            let now = tx
                .query_opt(sql::RULE_VERSION, &[&rule.id])
                .await
                .doing("cannot read the rule")?;
            Ok(Err(match now {
                None => RuleRefused::NotFound,
                Some(row) => RuleRefused::VersionMoved {
                    now: u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX),
                },
            }))
        })
    }

    async fn delete_rule(&self, id: &str) -> StoreResult<bool> {
        write_with!(self, |tx| {
            let gone = tx
                .execute("DELETE FROM alert_rule WHERE id = $1", &[&id])
                .await
                .doing("cannot delete the rule")?;
            tx.execute("DELETE FROM alert_rule_version WHERE id = $1", &[&id])
                .await
                .doing("cannot delete the rule's versions")?;
            tx.execute(
                "DELETE FROM alert WHERE rule_id = $1 AND state <> 'resolved'",
                &[&id],
            )
            .await
            .doing("cannot delete the rule's alerts")?;
            Ok(gone == 1)
        })
    }

    async fn open_alerts(&self, host_id: Option<&str>) -> StoreResult<Vec<AlertRecord>> {
        read_with!(self, |tx| {
            let columns = sql::ALERT_COLUMNS;
            let rows = match host_id {
                Some(host) => {
                    tx.query(
                        &format!(
                            "SELECT {columns} FROM alert WHERE host_id = $1 AND state <> 'resolved'"
                        ),
                        &[&host],
                    )
                    .await
                }
                None => {
                    tx.query(
                        &format!("SELECT {columns} FROM alert WHERE state <> 'resolved'"),
                        &[],
                    )
                    .await
                }
            }
            .doing("cannot read the alerts")?;
            alerts_of(&rows)
        })
    }

    async fn alerts(&self, filter: &AlertFilter) -> StoreResult<Vec<AlertRecord>> {
        let (clause, values) = filter_clause(filter);
        let statement = format!(
            "SELECT {} FROM alert {clause} ORDER BY since DESC, id LIMIT {}",
            sql::ALERT_COLUMNS,
            filter.limit
        );
        read_with!(self, |tx| {
            let params: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            let rows = tx
                .query(&statement, &params)
                .await
                .doing("cannot read the alerts")?;
            alerts_of(&rows)
        })
    }

    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRecord>> {
        read_with!(self, |tx| {
            let rows = tx
                .query(
                    &format!("SELECT {} FROM alert WHERE id = $1", sql::ALERT_COLUMNS),
                    &[&id],
                )
                .await
                .doing("cannot read the alert")?;
            Ok(alerts_of(&rows)?.pop())
        })
    }

    async fn write_alerts(&self, writes: Vec<AlertWrite>) -> StoreResult<Vec<bool>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let now = nanos(Utc::now());
        write_with!(self, |tx| {
            let mut applied = Vec::with_capacity(writes.len());
            for write in &writes {
                applied.push(write_one(tx, write, now).await?);
            }
            Ok(applied)
        })
    }

    async fn flap_history(
        &self,
        rule_id: &str,
        host_id: &str,
        subject: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<FlapHistory> {
        let since = nanos(since);
        let (firings, flapping): (i64, i64) = read_with!(self, |tx| {
            let row = tx
                .query_one(sql::FLAP_HISTORY, &[&rule_id, &host_id, &subject, &since])
                .await
                .doing("cannot count an alert's firings")?;
            Ok::<_, StoreError>((row.get(0), row.get(1)))
        })?;
        Ok(FlapHistory {
            firings: u32::try_from(firings).unwrap_or(u32::MAX),
            flapping: flapping != 0,
        })
    }

    async fn flapping_alerts(&self) -> StoreResult<Vec<AlertRecord>> {
        read_with!(self, |tx| {
            let rows = tx
                .query(
                    &format!(
                        "SELECT {} FROM alert {}",
                        sql::ALERT_COLUMNS,
                        sql::FLAPPING_ALERTS
                    ),
                    &[],
                )
                .await
                .doing("cannot read the flapping alerts")?;
            alerts_of(&rows)
        })
    }

    async fn forget_resolved(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        write_with!(self, |tx| {
            tx.execute(
                "DELETE FROM alert WHERE state = 'resolved' AND resolved_at < $1",
                &[&nanos(before)],
            )
            .await
            .doing("cannot forget old alerts")
        })
    }

    async fn silences(&self, now: DateTime<Utc>) -> StoreResult<Vec<Silence>> {
        let mut found = read_with!(self, |tx| {
            let rows = tx
                .query(
                    "SELECT body FROM alert_silence WHERE until > $1",
                    &[&nanos(now)],
                )
                .await
                .doing("cannot read the silences")?;
            rows.iter()
                .map(|r| silence(r.get(0)))
                .collect::<StoreResult<Vec<_>>>()
        })?;
        found.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
        Ok(found)
    }

    async fn create_silence(&self, silence: &Silence) -> StoreResult<()> {
        let body = silence_body(silence)?;
        write_with!(self, |tx| {
            tx.execute(
                "INSERT INTO alert_silence (id, until, body) VALUES ($1, $2, $3)",
                &[&silence.id, &nanos(silence.until), &body],
            )
            .await
            .doing("cannot store the silence")
            .map(drop)
        })
    }

    async fn delete_silence(&self, id: &str) -> StoreResult<bool> {
        write_with!(self, |tx| {
            tx.execute("DELETE FROM alert_silence WHERE id = $1", &[&id])
                .await
                .doing("cannot delete the silence")
                .map(|n| n == 1)
        })
    }
}
