//! Choosing how a series is answered (raw samples, minute or hour
//! roll-ups, and the width of a step) and turning buckets into the answer.
//! Backend-neutral, so every store answers the same way.

use chrono::DateTime;
use procmon_model::{Resolution, Series, SeriesPoint};

use super::rollup::Bucket;
use super::TimeRange;

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Most points a series may be asked for.
pub const MAX_POINTS: usize = 10_000;

/// Raw samples answer ranges up to this long; longer ones use roll-ups,
/// which are complete for every finished hour.
const RAW_UP_TO: i64 = HOUR;

/// How a series is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPlan {
    pub resolution: Resolution,
    /// Width of a step, in nanoseconds (a whole number of the resolution's
    /// own buckets).
    pub step: i64,
}

/// The plan for `from..=to` (nanoseconds) in at most about `max_points`
/// steps, given the oldest time each resolution still holds.
pub fn plan_series(
    from: i64,
    to: i64,
    max_points: usize,
    raw_from: i64,
    minute_from: i64,
) -> SeriesPlan {
    let points = max_points.clamp(1, MAX_POINTS) as i64;
    let span = to.saturating_sub(from).max(0);
    let finest = (span / points + i64::from(span % points != 0)).max(SECOND);
    // Saturating: a span of nearly the whole range of times (which `?from=`
    // may ask for) would overflow on the way up.
    let round_up = |unit: i64| (finest / unit + i64::from(finest % unit != 0)).saturating_mul(unit);
    if span <= RAW_UP_TO && from >= raw_from {
        SeriesPlan {
            resolution: Resolution::Raw,
            step: round_up(SECOND),
        }
    } else if finest < HOUR && from >= minute_from {
        SeriesPlan {
            resolution: Resolution::Minute,
            step: round_up(MINUTE),
        }
    } else {
        SeriesPlan {
            resolution: Resolution::Hour,
            step: round_up(HOUR),
        }
    }
}

/// The answer, from step buckets (each `plan.step` wide).
pub fn finish(
    range: TimeRange,
    plan: SeriesPlan,
    metrics: &[&str],
    buckets: Vec<Bucket>,
) -> Series {
    Series {
        from: range.from,
        to: range.to,
        step_ms: (plan.step / 1_000_000) as u64,
        resolution: plan.resolution,
        metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
        points: buckets
            .into_iter()
            .filter(|b| b.samples > 0)
            .map(|b| SeriesPoint {
                at: DateTime::from_timestamp_nanos(b.start),
                samples: b.samples,
                avg: b.stats.iter().map(|s| s.avg()).collect(),
                min: b.stats.iter().map(|s| s.min()).collect(),
                max: b.stats.iter().map(|s| s.max()).collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ranges_are_raw_long_ones_rolled_up() {
        let plan = |span: i64| plan_series(0, span, 1000, i64::MIN, i64::MIN);
        assert_eq!(plan(10 * MINUTE).resolution, Resolution::Raw);
        assert_eq!(plan(10 * MINUTE).step, SECOND);
        assert_eq!(plan(HOUR).step, 4 * SECOND);
        let day = plan(24 * HOUR);
        assert_eq!(day.resolution, Resolution::Minute);
        assert_eq!(day.step, 2 * MINUTE);
        assert_eq!(plan(90 * 24 * HOUR).resolution, Resolution::Hour);
        // Raw history gone: roll-ups even for a short range.
        assert_eq!(
            plan_series(0, MINUTE, 1000, SECOND, i64::MIN).resolution,
            Resolution::Minute
        );
    }

    #[test]
    fn a_range_as_wide_as_time_itself_is_planned_without_overflow() {
        // 1726 to 2026 in one point: wider than i64 nanoseconds can span.
        let plan = plan_series(i64::MIN + 1, i64::MAX - 1, 1, i64::MIN, i64::MIN);
        assert_eq!(plan.resolution, Resolution::Hour);
        // One step covering it all, at the largest width there is.
        assert_eq!(plan.step, i64::MAX);
    }
}
