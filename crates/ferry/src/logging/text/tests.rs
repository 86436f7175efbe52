//! Every line is formatted twice, by [`TextFormat`] and by the general formatter it stands in for,
//! and the bytes compared. [`TextFormat`] runs on a fixed clock in these tests, so its time stamp
//! also shows whether it wrote the line itself (the fixed time) or handed it on (the real time).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_observe::{Event as LogEvent, EventKind, EventLog, Observer, Outcome, Protocol};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// 2026-12-04T23:00:06.123456789Z.
fn fixed() -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(1_796_425_206_123_456_789)
}
const FIXED: &str = "2026-12-04T23:00:06.123456Z";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).expect("log output is UTF-8")
    }
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// What `emit` logs through the general formatter, then through [`TextFormat`] (fixed clock).
fn both(ansi: bool, emit: impl Fn()) -> (String, String) {
    let general = Captured::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(general.clone())
        .with_ansi(ansi);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), &emit);

    let ours = Captured::default();
    let format = TextFormat {
        now: fixed,
        ..TextFormat::new()
    };
    let layer = tracing_subscriber::fmt::layer()
        .event_format(format)
        .with_writer(ours.clone())
        .with_ansi(ansi);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), &emit);
    (general.text(), ours.text())
}

/// Both outputs are the same bytes but for their time stamps; returns [`TextFormat`]'s stamps.
fn assert_same_after_stamp(general: &str, ours: &str) -> Vec<String> {
    let (g, g_stamps) = unstamped(general);
    let (o, o_stamps) = unstamped(ours);
    assert_eq!(o.as_bytes(), g.as_bytes(), "general:\n{general}\nours:\n{ours}");
    assert!(!o_stamps.is_empty(), "nothing was logged");
    assert_eq!(g_stamps.len(), o_stamps.len());
    o_stamps
}

/// `text` with each line's leading time stamp (after the dimming escape with colours) replaced by
/// `<time>`, and the stamps. Lines a value's newline began carry no stamp and stay as they are.
fn unstamped(text: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut stamps = Vec::new();
    for line in text.split_inclusive('\n') {
        let skip = if line.starts_with("\x1b[2m") { 4 } else { 0 };
        match line.get(skip..skip + 27).filter(|s| is_stamp(s)) {
            Some(stamp) => {
                out.push_str(&line[..skip]);
                out.push_str("<time>");
                out.push_str(&line[skip + 27..]);
                stamps.push(stamp.to_owned());
            }
            None => out.push_str(line),
        }
    }
    (out, stamps)
}

/// `2026-12-04T23:00:06.123456Z`'s shape.
fn is_stamp(s: &str) -> bool {
    s.len() == 27
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            26 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// Both formatters write the same bytes, and [`TextFormat`] wrote every line itself.
fn assert_written_directly(emit: impl Fn()) -> String {
    let (general, ours) = both(false, emit);
    for stamp in assert_same_after_stamp(&general, &ours) {
        assert_eq!(stamp, FIXED, "handed on instead of written:\n{ours}");
    }
    ours
}

fn full_event() -> LogEvent {
    LogEvent {
        event: EventKind::Rename,
        time: "2026-12-04T23:00:06.123Z".into(),
        protocol: Protocol::Ftps,
        session: 18_446_744_073_709_551_615,
        client_ip: "2001:db8::1".into(),
        client_port: 65_535,
        user: Some("bob \"the\" \\ builder\r\nfake line\x1b[31m".into()),
        method: Some("keyboard-interactive"),
        path: Some("/dir with space/Grüße/日本語.txt\t\u{7f}\u{85}\u{200b}".into()),
        new_path: Some("/quote\"s/and 'single'/back\\slash".into()),
        bytes: Some(0),
        duration_ms: Some(u64::MAX),
        result: Outcome::Failed,
        error: Some("disk \"full\"\nnext line é".into()),
        until: Some("2026-12-05T00:00:00Z \"x\"\n".into()),
        at: fixed(),
    }
}

#[test]
fn event_log_line_with_every_field_is_identical() {
    let out = assert_written_directly(|| EventLog.event(&full_event()));
    // Escapes came from the value, not from a second quoting.
    assert!(
        out.contains(r#"user=bob "the" \\ builder\r\nfake line\u{1b}[31m"#),
        "{out}"
    );
    assert!(out.contains(r#"until="2026-12-05T00:00:00Z \"x\"\n""#), "{out}");
}

#[test]
fn event_log_line_without_optional_fields_is_identical() {
    // Successful, with no optional field set.
    let client = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let e = LogEvent::new(EventKind::Download, Protocol::Ftp, 0, client);
    let out = assert_written_directly(|| EventLog.event(&e));
    assert!(
        out.ends_with(
            " INFO ferry::event: event event=\"download\" protocol=\"ftp\" session=0 \
             client_ip=127.0.0.1 client_port=0 result=\"ok\"\n"
        ),
        "{out}"
    );
}

#[test]
fn event_log_lines_inside_spans_are_identical() {
    assert_written_directly(|| {
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000));
        let session = tracing::info_span!(
            "session",
            id = 7u64,
            peer = %peer,
            via = tracing::field::Empty,
            user = tracing::field::Empty
        );
        let _s = session.enter();
        EventLog.event(&full_event());
        session.record("user", "al\"ice");
        session.record("via", tracing::field::display("proxy"));
        let bare = tracing::info_span!("transfer");
        let _b = bare.enter();
        EventLog.event(&full_event());
    });
}

#[derive(Debug)]
struct Cause;

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the cause \x1b[2J")
    }
}

impl std::error::Error for Cause {}

#[derive(Debug)]
struct Failure(Cause);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("it failed")
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn every_field_kind_and_level_on_the_event_target_is_identical() {
    assert_written_directly(|| {
        let failure = Failure(Cause);
        let err: &(dyn std::error::Error + 'static) = &failure;
        tracing::warn!(
            target: "ferry::event",
            negative = -9_223_372_036_854_775_808i64,
            positive = 42i64,
            yes = true,
            no = false,
            float = 1.5f64,
            big = u128::MAX,
            small = i128::MIN,
            r#type = "raw name",
            empty = "",
            ascii_edges = " ~!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}",
            controls = "\0\x07\x1b\x7f",
            unicode = "é 日本 \u{301}e \u{200b} \u{feff} 🦀",
            debug = ?Some("x\ny"),
            display = %"shown \"raw\"\n",
            error = err,
            "a message with \x1b[31m escape and \u{85} C1 and \"quotes\""
        );
        tracing::error!(target: "ferry::event", n = 1u64);
        tracing::debug!(target: "ferry::event", n = 2u64, "m");
        tracing::trace!(target: "ferry::event", "only a message {}", 3);
        tracing::info!(target: "ferry::event", message = "message as a field", after = 1u64);
        tracing::info!(target: "ferry::event", first = "before the message", "then {}", "it");
    });
}

#[test]
fn other_targets_and_terminal_colours_go_to_the_general_formatter() {
    let (general, ours) = both(false, || {
        tracing::info!(target: "ferry::other", user = "bob", "not the event log");
        tracing::info!(user = "bob", "module target");
    });
    for stamp in assert_same_after_stamp(&general, &ours) {
        assert_ne!(stamp, FIXED, "{ours}");
    }

    let (general, ours) = both(true, || EventLog.event(&full_event()));
    assert!(ours.contains("\x1b["), "ANSI lines have escapes: {ours}");
    for stamp in assert_same_after_stamp(&general, &ours) {
        assert_ne!(stamp, FIXED, "{ours:?}");
    }
}

#[test]
fn time_stamp_is_the_general_formatters() {
    // The general formatter reads the real clock: TextFormat's stamp, taken between two of its
    // lines, lies between their stamps (same width, so text order is time order).
    let general = Captured::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(general.clone())
        .with_ansi(false);
    let subscriber = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let ours = Captured::default();
    let layer = tracing_subscriber::fmt::layer()
        .event_format(TextFormat::new())
        .with_writer(ours.clone())
        .with_ansi(false);
    let ours_subscriber = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    for _ in 0..200 {
        tracing::dispatcher::with_default(&subscriber, || {
            tracing::info!(target: "ferry::event", n = 1u64);
        });
        tracing::dispatcher::with_default(&ours_subscriber, || {
            tracing::info!(target: "ferry::event", n = 1u64);
        });
        tracing::dispatcher::with_default(&subscriber, || {
            tracing::info!(target: "ferry::event", n = 1u64);
        });
    }
    let general = general.text();
    let ours = ours.text();
    let (_, g) = unstamped(&general);
    let (_, o) = unstamped(&ours);
    assert_eq!((g.len(), o.len()), (400, 200));
    for (i, o) in o.iter().enumerate() {
        let (before, after) = (&g[2 * i], &g[2 * i + 1]);
        assert!(before <= o && o <= after, "{before} {o} {after}");
    }
}

#[test]
fn time_stamps_of_known_instants() {
    let at = |secs: u64, nanos: u32| {
        Stamp::at(UNIX_EPOCH + Duration::new(secs, nanos)).map(|s| s.as_str().to_owned())
    };
    assert_eq!(at(0, 0).as_deref(), Some("1970-01-01T00:00:00.000000Z "));
    assert_eq!(at(0, 999).as_deref(), Some("1970-01-01T00:00:00.000000Z "));
    assert_eq!(
        at(951_782_400, 1_000).as_deref(),
        Some("2000-02-29T00:00:00.000001Z ")
    );
    assert_eq!(
        at(4_107_542_399, 999_999_999).as_deref(),
        Some("2100-02-28T23:59:59.999999Z ")
    );
    assert_eq!(
        at(4_107_542_400, 0).as_deref(),
        Some("2100-03-01T00:00:00.000000Z ")
    );
    assert_eq!(
        Stamp::at(fixed()).map(|s| s.as_str().to_owned()),
        Some(format!("{FIXED} "))
    );
    assert_eq!(
        at(YEAR_10000 - 1, 999_999_999).as_deref(),
        Some("9999-12-31T23:59:59.999999Z ")
    );
    assert!(at(YEAR_10000, 0).is_none());
    assert!(Stamp::at(UNIX_EPOCH - Duration::from_nanos(1)).is_none());
}

#[test]
fn out_of_range_times_go_to_the_general_formatter() {
    fn before_1970() -> SystemTime {
        UNIX_EPOCH - Duration::from_secs(1)
    }
    let ours = Captured::default();
    let layer = tracing_subscriber::fmt::layer()
        .event_format(TextFormat {
            now: before_1970,
            ..TextFormat::new()
        })
        .with_writer(ours.clone())
        .with_ansi(false);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(target: "ferry::event", n = 1u64);
    });
    let ours = ours.text();
    assert!(!ours.starts_with("1969"), "{ours}");
    assert!(ours.ends_with(" INFO ferry::event: n=1\n"), "{ours}");
}

#[test]
fn integers_are_written_as_debug_writes_them() {
    for n in [
        0,
        1,
        9,
        10,
        99,
        100,
        12_345,
        u64::from(u32::MAX),
        u64::MAX - 1,
        u64::MAX,
    ] {
        let mut s = String::new();
        write_u64(&mut Writer::new(&mut s), n).expect("written");
        assert_eq!(s, format!("{n:?}"));
    }
}
