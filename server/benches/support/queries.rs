//! The reads the scale bench times on each store holding the same data:
//! the tree now and at past times of the day, a process's series over the
//! day, and a search through the whole fleet. The stores take turns on
//! every read, so a busy moment of the shared machine falls on all alike,
//! and each read's answer must be the same size on every store.

use std::time::{Duration, Instant};

use procmon_server::store::{SearchField, SearchQuery, Store, TimeRange};

use super::day::Day;

/// The text searched for: in about one process in a thousand's command
/// line, so the search goes through most of the fleet.
const SEARCHED: &str = "--worker=999";
/// As many hits as the API answers by default.
const HITS: usize = 200;

/// One read's times, a list per store in the stores' order.
pub struct Timed {
    pub what: &'static str,
    pub times: Vec<Vec<Duration>>,
}

/// Times `reads` of each tree and series read and `searches` searches.
pub async fn time_reads(
    stores: &[&dyn Store],
    day: &Day,
    reads: usize,
    searches: usize,
) -> Vec<Timed> {
    let span = day.last - day.first;
    let range = TimeRange {
        from: day.first,
        to: day.last,
    };
    let query = SearchQuery {
        text: SEARCHED.to_owned(),
        field: SearchField::Cmd,
    };
    let mut timed: Vec<Timed> = [
        "tree now",
        "tree at a past time",
        "process series, day",
        "fleet search",
    ]
    .into_iter()
    .map(|what| Timed {
        what,
        times: vec![Vec::new(); stores.len()],
    })
    .collect();
    for k in 0..reads {
        // Past times spread over the day, the same in every run.
        let at = day.first + span * ((k * 7_919) % reads) as i32 / reads as i32;
        let mut sizes = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for (s, store) in stores.iter().enumerate() {
            let t = Instant::now();
            let now = store.snapshot(&day.host, None).await.expect("the tree now");
            timed[0].times[s].push(t.elapsed());
            sizes[0].push(now.map(|n| n.processes.len()));

            let t = Instant::now();
            let past = store
                .snapshot(&day.host, Some(at))
                .await
                .expect("a past tree");
            timed[1].times[s].push(t.elapsed());
            sizes[1].push(past.map(|p| p.processes.len()));

            let t = Instant::now();
            let series = store
                .process_series(&day.host, 1, day.pid1_start, range, 1_000)
                .await
                .expect("the series");
            timed[2].times[s].push(t.elapsed());
            sizes[2].push(Some(series.points.len()));

            if k < searches {
                let t = Instant::now();
                let (found, _) = store.search(&query, None, HITS).await.expect("the search");
                timed[3].times[s].push(t.elapsed());
                sizes[3].push(Some(found.len()));
            }
        }
        for (read, sizes) in timed.iter().zip(&sizes) {
            assert!(
                sizes.windows(2).all(|w| w[0] == w[1]) && sizes.iter().all(Option::is_some),
                "{} answers differently on the stores: {sizes:?}",
                read.what
            );
        }
    }
    timed
}
