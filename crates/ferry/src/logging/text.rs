//! The text layer's line layout. The event log (target `ferry::event`, one line per session, login
//! and file operation) is the only event logged for every small transfer, and the subscriber's
//! general formatter spends about a quarter of a small RETR's instructions on it (style wrappers
//! around every name and `=`, one formatting pass per field). [`TextFormat`] writes those lines
//! itself, byte for byte as the general formatter would (the tests compare the two), and hands every
//! other event, any line with terminal colours and any time it cannot write (before 1970, after
//! 9999) to that formatter.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_proto::listing::Civil;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::VisitOutput;
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as SystemTimer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event log's target (crates/ferry-observe/src/eventlog.rs).
const EVENT_TARGET: &str = "ferry::event";

/// 10000-01-01T00:00:00Z: the general formatter writes later years with a `+`; those go to it.
const YEAR_10000: u64 = 253_402_300_800;

/// The text layout: the event log's lines written directly, everything else by `default`.
#[derive(Debug)]
pub(crate) struct TextFormat {
    default: Format<Full, SystemTimer>,
    now: fn() -> SystemTime,
}

impl TextFormat {
    /// The layout of `tracing_subscriber::fmt::layer()` (full, UTC time stamps, with the target).
    pub(crate) fn new() -> Self {
        TextFormat {
            default: tracing_subscriber::fmt::format(),
            now: SystemTime::now,
        }
    }
}

impl<S> FormatEvent<S, DefaultFields> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, DefaultFields>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() == EVENT_TARGET && !writer.has_ansi_escapes() {
            if let Some(stamp) = Stamp::at((self.now)()) {
                return event_line(&stamp, ctx, writer, event);
            }
        }
        self.default.format_event(ctx, writer, event)
    }
}

/// One event's line: time stamp, level, spans, target, fields, as the general formatter has them.
fn event_line<S>(
    stamp: &Stamp,
    ctx: &FmtContext<'_, S, DefaultFields>,
    mut writer: Writer<'_>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    writer.write_str(stamp.as_str())?;
    writer.write_str(level(meta.level()))?;
    if let Some(scope) = ctx.event_scope() {
        let mut seen = false;
        for span in scope.from_root() {
            writer.write_str(span.metadata().name())?;
            seen = true;
            let ext = span.extensions();
            if let Some(fields) = ext.get::<FormattedFields<DefaultFields>>() {
                if !fields.is_empty() {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
            }
            writer.write_char(':')?;
        }
        if seen {
            writer.write_char(' ')?;
        }
    }
    writer.write_str(meta.target())?;
    writer.write_str(": ")?;
    // The writer itself, not a borrowing one: one indirection less for each piece written.
    let mut fields = Fields {
        writer,
        is_empty: true,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    fields.writer.write_char('\n')
}

/// The level as the general formatter pads it, and the space after it.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        _ => "ERROR ",
    }
}

/// `2026-12-05T14:37:10.123456Z ` (UTC, microseconds truncated, and the space after it).
struct Stamp([u8; 28]);

impl Stamp {
    /// `None` before 1970 and from the year 10000 on.
    fn at(t: SystemTime) -> Option<Stamp> {
        let since = t.duration_since(UNIX_EPOCH).ok()?;
        if since.as_secs() >= YEAR_10000 {
            return None;
        }
        let c = Civil::from_system_time(t);
        let mut b = *b"0000-00-00T00:00:00.000000Z ";
        digits(&mut b[0..4], u64::try_from(c.year).ok()?);
        digits(&mut b[5..7], c.month.into());
        digits(&mut b[8..10], c.day.into());
        digits(&mut b[11..13], c.hour.into());
        digits(&mut b[14..16], c.minute.into());
        digits(&mut b[17..19], c.second.into());
        digits(&mut b[20..26], since.subsec_micros().into());
        Some(Stamp(b))
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits were written into an ASCII template.
        std::str::from_utf8(&self.0).unwrap_or("<unknown time> ")
    }
}

/// `n` in decimal, right-aligned and zero-padded into `out` (higher digits than fit are dropped).
fn digits(out: &mut [u8], mut n: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `n` in decimal, as `{:?}` writes an integer.
fn write_u64(w: &mut Writer<'_>, n: u64) -> fmt::Result {
    let mut b = [0u8; 20];
    let len = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    let Some(slot) = b.get_mut(..len) else {
        return Err(fmt::Error);
    };
    digits(slot, n);
    w.write_str(std::str::from_utf8(slot).map_err(|_| fmt::Error)?)
}

/// The fields of one event as the general formatter's field visitor writes them: `name=value`
/// separated by spaces, strings quoted and escaped as `{:?}` does, everything else as `{:?}`. The
/// fields that visitor treats specially (the message, `r#` names, `log.` fields, errors) and strings
/// `{:?}` would escape are handed to that visitor.
struct Fields<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    /// Whether `name=` is written as it is (the general visitor rewrites the others).
    fn plain(field: &Field) -> bool {
        let name = field.name();
        name != "message" && !name.starts_with("r#") && !name.starts_with("log.")
    }

    /// The separating space (not before the first field), the name and `=`.
    fn name(&mut self, field: &Field) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }

    /// Lets the general field visitor write this field.
    fn general(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.result = visitor.finish();
        // It skips `log.` fields (the `log` crate's metadata) without a separator.
        if !field.name().starts_with("log.") {
            self.is_empty = false;
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        // Printable ASCII but `"` and `\` is what `{:?}` leaves as it is.
        let verbatim = value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if Self::plain(field) && verbatim {
            self.result = self.name(field).and_then(|()| {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            });
        } else {
            self.general(field, |v| v.record_str(field, value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_err() {
            return;
        }
        if Self::plain(field) {
            self.result = self.name(field).and_then(|()| write_u64(&mut self.writer, value));
        } else {
            self.general(field, |v| v.record_u64(field, value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_err() {
            return;
        }
        if Self::plain(field) {
            self.result = self.name(field).and_then(|()| {
                if value < 0 {
                    self.writer.write_char('-')?;
                }
                write_u64(&mut self.writer, value.unsigned_abs())
            });
        } else {
            self.general(field, |v| v.record_i64(field, value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_err() {
            return;
        }
        if Self::plain(field) {
            self.result = self
                .name(field)
                .and_then(|()| self.writer.write_str(if value { "true" } else { "false" }));
        } else {
            self.general(field, |v| v.record_bool(field, value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        self.general(field, |v| v.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        if Self::plain(field) {
            self.result = self.name(field).and_then(|()| write!(self.writer, "{value:?}"));
        } else {
            self.general(field, |v| v.record_debug(field, value));
        }
    }
}

#[cfg(test)]
mod tests;
