//! The benches' figures: each measured value beside its target, whether the
//! target is met, and the baseline measured in the same run; and the
//! percentiles they are taken from.

use std::time::Duration;

#[derive(Clone, Copy)]
pub enum Target {
    None,
    AtMost(f64),
    Under(f64),
    AtLeast(f64),
}

#[derive(Default)]
pub struct Report {
    rows: Vec<(String, String, String, String, &'static str)>,
}

impl Report {
    pub fn add(&mut self, what: String, value: f64, unit: &str, target: Target, baseline: String) {
        let (target, verdict) = match target {
            Target::None => ("-".to_owned(), ""),
            Target::AtMost(t) => (format!("<= {t} {unit}"), met(value <= t)),
            Target::Under(t) => (format!("< {t} {unit}"), met(value < t)),
            Target::AtLeast(t) => (format!(">= {t} {unit}"), met(value >= t)),
        };
        let figure = if value >= 100.0 {
            format!("{value:.0} {unit}")
        } else {
            format!("{value:.3} {unit}")
        };
        self.rows.push((what, figure, target, baseline, verdict));
    }

    pub fn print(&mut self) {
        // By figure number, in the order measured within one.
        self.rows
            .sort_by_key(|r| r.0.split('.').next().unwrap_or("").to_owned());
        let w = self
            .rows
            .iter()
            .map(|r| r.0.len())
            .max()
            .unwrap_or(0)
            .max(44);
        println!(
            "{:<w$} {:>12}  {:<14} {:<10} baseline (same run)",
            "figure", "measured", "target", "verdict"
        );
        for (what, figure, target, baseline, verdict) in &self.rows {
            println!("{what:<w$} {figure:>12}  {target:<14} {verdict:<10} {baseline}");
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "NOT MET"
    }
}

/// Median and 95th percentile.
pub fn median_p95(times: &[Duration]) -> (Duration, Duration) {
    if times.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    (sorted[sorted.len() / 2], percentile(&sorted, 95))
}

pub fn max(times: &[Duration]) -> Duration {
    times.iter().copied().max().unwrap_or_default()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p`th percentile (0 to 100) of `times`; zero when there are none.
pub fn percentile(times: &[Duration], p: usize) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted[((sorted.len() * p).div_ceil(100).max(1) - 1).min(sorted.len() - 1)]
}
