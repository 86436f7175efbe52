//! What `ferry bench` measures besides wall time: CPU time of a process from `/proc/PID/stat`, and
//! latency percentiles.

use std::time::Duration;

/// Clock ticks per second of the `/proc/PID/stat` CPU fields (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

/// CPU time (user + system) used so far by process `pid`, or by this process when `pid` is `None`;
/// with `children`, also that of its children that have been waited for.
///
/// # Errors
///
/// The process does not exist (or is not readable), or the file is not in the expected form.
pub fn cpu_time(pid: Option<u32>, children: bool) -> Result<Duration, String> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let ticks = parse_stat(&text, children).ok_or_else(|| format!("{path}: unexpected contents"))?;
    Ok(Duration::from_millis(ticks.saturating_mul(1000 / TICKS_PER_SEC)))
}

/// utime + stime (+ cutime + cstime) in ticks, from the text of `/proc/PID/stat`.
fn parse_stat(text: &str, children: bool) -> Option<u64> {
    // The command name (field 2) is in parentheses and may itself hold spaces and parentheses: the
    // fields that follow start after the last `)`. Field n (1-based) is then at index n - 3.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let own = field(14)?.checked_add(field(15)?)?;
    if children {
        own.checked_add(field(16)?)?.checked_add(field(17)?)
    } else {
        Some(own)
    }
}

/// The load average of the last minute, from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The slowest.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (sorted here); all zero when there are none.
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |p: f64| -> f64 {
            // Nearest rank: the smallest sample with at least p % of the samples at or below it.
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            let i = rank.clamp(1, samples.len()) - 1;
            samples.get(i).map_or(0.0, ms)
        };
        Percentiles {
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: samples.last().map_or(0.0, ms),
        }
    }
}

/// A duration in milliseconds.
pub fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (ferry (x) y) S 1 2 3 4 5 6 7 8 9 10 120 30 7 3 20 0 9 0 100";
        assert_eq!(parse_stat(line, false), Some(150));
        assert_eq!(parse_stat(line, true), Some(160));
        assert_eq!(parse_stat("4242 (short) S 1 2", false), None);
        assert_eq!(parse_stat("no parenthesis", false), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = cpu_time(None, false).expect("own stat");
        let start = std::time::Instant::now();
        let mut x = 1u64;
        let mut after = before;
        // Spin until the clock ticks over (10 ms of CPU); a loaded machine may take a while to give them.
        while after <= before && start.elapsed() < Duration::from_secs(20) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            after = cpu_time(None, false).expect("own stat");
        }
        assert!(after > before, "{before:?} -> {after:?}");
        assert!(cpu_time(Some(u32::MAX), true).is_err());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(Percentiles::of(&mut one).p50, 7.0);
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
