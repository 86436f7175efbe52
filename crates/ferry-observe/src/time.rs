//! Civil UTC time from `SystemTime`, for RFC 3339 time stamps and the xferlog's `ctime` format.

use std::time::{SystemTime, UNIX_EPOCH};

use ferry_proto::listing::Civil;

/// Milliseconds past the second (0 for times before the epoch, which logs never carry).
fn millis(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_millis())
}

/// `2026-12-04T23:00:06.123Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let c = Civil::from_system_time(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        millis(t)
    )
}

/// `Fri Dec  4 23:00:06 2026` (C's `ctime` without the newline), in UTC.
pub(crate) fn ctime(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = Civil::from_system_time(t);
    let wd = DAYS.get(c.weekday as usize).copied().unwrap_or("???");
    let mon = MONTHS
        .get(c.month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("???");
    format!(
        "{wd} {mon} {:>2} {:02}:{:02}:{:02} {}",
        c.day, c.hour, c.minute, c.second, c.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_425_206_123);
        assert_eq!(rfc3339(t), "2026-12-04T23:00:06.123Z");
        assert_eq!(ctime(t), "Fri Dec  4 23:00:06 2026");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(ctime(UNIX_EPOCH), "Thu Jan  1 00:00:00 1970");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }
}
