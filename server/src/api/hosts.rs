//! `GET /api/hosts/`: every host, online or not, with its newest totals;
//! `DELETE /api/hosts/{id}`: an admin removes a host that is gone.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use chrono::{DateTime, DurationRound, Utc};
use procmon_model::{ErrorBody, HostSummary};

use crate::auth::{Admin, Reader};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::HostRecord;

/// A host is offline once this many of its agent's intervals pass with no
/// snapshot.
pub const OFFLINE_AFTER_INTERVALS: u32 = 3;

/// Every host the server has snapshots from, sorted by display name.
#[utoipa::path(
    get,
    path = "/api/hosts/",
    operation_id = "list_hosts",
    tag = "hosts",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every host, sorted by display name", body = Vec<HostSummary>),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now, the server is at its connection limit, or it did not answer in time", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _reader: Reader,
) -> Result<Json<Vec<HostSummary>>, ApiError> {
    let records = state.store.hosts().await?;
    let mut names = display_names(
        records
            .iter()
            .map(|r| (r.info.id.as_str(), r.info.hostname.as_str())),
    );
    let now = state.clock.now();
    let mut hosts: Vec<HostSummary> = records
        .into_iter()
        .map(|record| {
            let name = names
                .remove(&record.info.id)
                .unwrap_or_else(|| record.info.id.clone());
            summarize(record, name, now, state.raw_retention)
        })
        .collect();
    hosts.sort_by(|a, b| {
        a.display_name
            .cmp(&b.display_name)
            .then(a.host.id.cmp(&b.host.id))
    });
    Ok(Json(hosts))
}

/// Removes a host that is gone: its keys are revoked first (so its agent
/// cannot bring it back), then the host and all its history are deleted.
#[utoipa::path(
    delete,
    path = "/api/hosts/{id}",
    operation_id = "remove_host",
    tag = "hosts",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The host's stable id (`host.id`)"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    responses(
        (status = 204, description = "Removed, with its history; its keys are revoked"),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, host = %host_id))]
pub async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    Path(host_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.host(&host_id).await?.is_none() {
        return Err(ApiError::UnknownHost(host_id));
    }
    // No key has the empty id: every key of the host goes.
    let revoked = state
        .agent_keys
        .store()
        .revoke_keys_of(Some(&host_id), None, "", state.clock.now())
        .await?;
    if !state.store.remove_host(&host_id).await? {
        return Err(ApiError::UnknownHost(host_id));
    }
    state.live.remove(&host_id);
    tracing::info!(revoked_keys = revoked, "host removed with its history");
    Ok(StatusCode::NO_CONTENT)
}

/// The summary of one host, or `UnknownHost`.
pub async fn summary_of(state: &AppState, host_id: &str) -> Result<HostSummary, ApiError> {
    Ok(summary_and_taken(state, host_id).await?.0)
}

/// The host's summary, and when its newest snapshot was taken (the store's
/// newest, which the live state may or may not hold).
pub async fn summary_and_taken(
    state: &AppState,
    host_id: &str,
) -> Result<(HostSummary, DateTime<Utc>), ApiError> {
    let record = state
        .store
        .host(host_id)
        .await?
        .ok_or_else(|| ApiError::UnknownHost(host_id.to_owned()))?;
    let namesakes = state.store.hosts_named(&record.info.hostname).await?;
    let hostname = record.info.hostname.clone();
    let names = display_names(namesakes.iter().map(|id| (id.as_str(), hostname.as_str())));
    // The host is among its namesakes, since it is stored.
    let name = names.get(host_id).cloned().unwrap_or(hostname);
    let taken_at = record.newest_taken_at;
    Ok((
        summarize(record, name, state.clock.now(), state.raw_retention),
        taken_at,
    ))
}

/// Whether the host's newest delivery reached a server (any server of the
/// database) within [`OFFLINE_AFTER_INTERVALS`] of its agent's intervals.
pub fn is_online(record: &HostRecord, now: DateTime<Utc>) -> bool {
    let silence = now.signed_duration_since(record.last_seen);
    let limit = chrono::Duration::milliseconds(
        i64::try_from(
            record
                .interval_ms
                .saturating_mul(u64::from(OFFLINE_AFTER_INTERVALS)),
        )
        .unwrap_or(i64::MAX),
    );
    silence <= limit
}

fn summarize(
    record: HostRecord,
    display_name: String,
    now: DateTime<Utc>,
    retention: chrono::TimeDelta,
) -> HostSummary {
    // To the minute: the summary is part of the newest listing, which is
    // kept while its summary stays the same.
    let kept_from = now
        .checked_sub_signed(retention)
        .and_then(|t| t.duration_trunc(chrono::TimeDelta::minutes(1)).ok())
        .map_or(record.first_taken_at, |t| t + chrono::TimeDelta::minutes(1));
    HostSummary {
        online: is_online(&record, now),
        display_name,
        history_from: kept_from.max(record.first_taken_at),
        first_seen: record.first_seen,
        last_seen: record.last_seen,
        process_count: record.totals.process_count,
        cpu_percent_total: record.totals.cpu_percent,
        memory_rss_total_bytes: record.totals.memory_rss_bytes,
        host: record.info,
    }
}

/// Hostname for each host id; where hosts share a hostname, each gets the
/// shortest prefix of its id (at least 8 characters) that tells them apart,
/// e.g. "web (3f2a9c1d)". A host with no hostname is shown by its id.
///
/// O(n log n): among a hostname's ids in sorted order, the id sharing the
/// longest prefix with a given one is one of its two neighbours, so only
/// those are compared.
pub fn display_names<'a>(
    hosts: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> HashMap<String, String> {
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, hostname) in hosts {
        by_name.entry(hostname.trim()).or_default().push(id);
    }
    let mut names = HashMap::new();
    for (hostname, mut ids) in by_name {
        if hostname.is_empty() {
            names.extend(ids.into_iter().map(|id| (id.to_owned(), id.to_owned())));
            continue;
        }
        if ids.len() == 1 {
            names.insert(ids[0].to_owned(), hostname.to_owned());
            continue;
        }
        // An id listed twice is not its own namesake.
        ids.sort_unstable();
        ids.dedup();
        for (i, &id) in ids.iter().enumerate() {
            let before = i.checked_sub(1).map_or(0, |j| common_chars(ids[j], id));
            let after = ids.get(i + 1).map_or(0, |next| common_chars(next, id));
            // Shortest width whose prefix no other id shares, else all of it.
            let length = id.chars().count();
            let width = (before.max(after) + 1).max(8).min(length);
            names.insert(id.to_owned(), format!("{hostname} ({})", prefix(id, width)));
        }
    }
    names
}

/// How many leading characters `a` and `b` have in common.
fn common_chars(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

fn prefix(id: &str, chars: usize) -> &str {
    id.char_indices()
        .nth(chars)
        .map_or(id, |(end, _)| &id[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_hostnames_get_distinct_names() {
        let names = display_names([
            ("aaaaaaaa1111", "web"),
            ("aaaaaaaa2222", "web"),
            ("bbbbbbbbbbbb", "db"),
            ("cccc", ""),
        ]);
        assert_eq!(names["aaaaaaaa1111"], "web (aaaaaaaa1)");
        assert_eq!(names["aaaaaaaa2222"], "web (aaaaaaaa2)");
        assert_eq!(names["bbbbbbbbbbbb"], "db");
        assert_eq!(names["cccc"], "cccc");
    }

    /// The first version: for each id, every width from 8 up against every
    /// namesake. Quadratic, and the reference for what the names should be.
    fn display_names_quadratic<'a>(
        hosts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> HashMap<String, String> {
        let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
        for (id, hostname) in hosts {
            by_name.entry(hostname.trim()).or_default().push(id);
        }
        let mut names = HashMap::new();
        for (hostname, ids) in by_name {
            if hostname.is_empty() {
                names.extend(ids.into_iter().map(|id| (id.to_owned(), id.to_owned())));
            } else if ids.len() == 1 {
                names.insert(ids[0].to_owned(), hostname.to_owned());
            } else {
                for &id in &ids {
                    let others: Vec<&str> =
                        ids.iter().copied().filter(|&other| other != id).collect();
                    let width = (8..id.chars().count())
                        .find(|&n| others.iter().all(|other| prefix(other, n) != prefix(id, n)))
                        .unwrap_or(id.chars().count());
                    names.insert(id.to_owned(), format!("{hostname} ({})", prefix(id, width)));
                }
            }
        }
        names
    }

    /// A small xorshift: reproducible inputs with no extra dependency.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn same_names_as_the_quadratic_version_on_random_hosts() {
        // Few letters and hostnames, so ids share long prefixes and
        // hostnames are shared; some ids are shorter than 8 characters,
        // some repeat, some letters take two bytes.
        let letters = ['a', 'b', 'é', 'c'];
        let hostnames = ["web", " web ", "db", "", "x"];
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let count = 1 + random.below(40);
            let hosts: Vec<(String, &str)> = (0..count)
                .map(|_| {
                    let length = 1 + random.below(14);
                    let id: String = (0..length).map(|_| letters[random.below(4)]).collect();
                    (id, hostnames[random.below(hostnames.len())])
                })
                .collect();
            // An id belongs to one host: later duplicates take the first's
            // hostname, as the store would have it.
            let mut seen = HashMap::new();
            let hosts: Vec<(&str, &str)> = hosts
                .iter()
                .map(|(id, name)| (id.as_str(), *seen.entry(id.as_str()).or_insert(*name)))
                .collect();
            assert_eq!(
                display_names(hosts.iter().copied()),
                display_names_quadratic(hosts.iter().copied()),
                "round {round}: {hosts:?}"
            );
        }
    }

    #[test]
    fn eight_thousand_namesakes_are_quick() {
        let ids: Vec<String> = (0..8000u64)
            .map(|i| format!("{:016x}{i:04}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40))
            .collect();
        let started = std::time::Instant::now();
        let names = display_names(ids.iter().map(|id| (id.as_str(), "web")));
        let took = started.elapsed();
        assert_eq!(names.len(), 8000);
        let distinct: std::collections::HashSet<&String> = names.values().collect();
        assert_eq!(distinct.len(), 8000, "every name is unique");
        // The quadratic version took about a second here; generous bound.
        assert!(
            took < std::time::Duration::from_millis(500),
            "took {took:?}"
        );
        eprintln!("8000 namesakes named in {took:?}");
    }
}
