//! The report of a bench run: text for people, one JSON object for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use super::measure::{load_average, Percentiles};
use super::run::Outcome;
use super::{BenchArgs, Op};

/// One error message and how often it happened.
#[derive(Debug, serde::Serialize)]
pub struct ErrorCount {
    pub message: String,
    pub count: u64,
}

/// What `ferry bench` prints (field names are the JSON keys; documented in docs/benchmarks.md).
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub protocol: &'static str,
    pub op: Op,
    pub sessions: u32,
    pub threads: u16,
    /// Bytes per file (get, put).
    pub size: Option<u64>,
    pub requested: u64,
    pub done: u64,
    pub errors: u64,
    pub error_messages: Vec<ErrorCount>,
    /// Sessions that could not be set up before the clock started (get, put).
    pub setup_errors: u64,
    pub stopped_early: bool,
    pub wall_secs: f64,
    pub ops_per_sec: f64,
    pub bytes: u64,
    pub mb_per_sec: f64,
    pub latency_ms: Percentiles,
    pub client_cpu_secs: f64,
    pub client_cpu_per_op_us: f64,
    /// Client CPU time over wall time, in per cent of one core.
    pub client_cpu_percent: f64,
    pub server_pid: Option<u32>,
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_per_op_us: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    /// idle: sessions still answering after the hold.
    pub held: Option<u64>,
    pub hold_secs: Option<u64>,
    /// idle: the server's CPU time during the hold.
    pub server_cpu_while_held_secs: Option<f64>,
    /// The 1-minute load average at the end (a shared machine skews every figure).
    pub load_average: Option<f64>,
}

impl Report {
    /// The report of `out`, a run of `args`.
    pub fn new(args: &BenchArgs, out: Outcome) -> Report {
        let Outcome {
            requested,
            mut tally,
            setup_errors,
            wall,
            client_cpu,
            server_cpu,
            stopped_early,
            held,
        } = out;
        let secs = wall.as_secs_f64();
        let done = tally.done;
        let per_op = |cpu: Duration| {
            if done == 0 {
                0.0
            } else {
                cpu.as_secs_f64() * 1e6 / done as f64
            }
        };
        let percent = |cpu: Duration| ratio(cpu.as_secs_f64() * 100.0, secs);
        let url_scheme = args.url.split_once("://").map_or("", |(s, _)| s);
        Report {
            protocol: protocol(url_scheme),
            op: args.op,
            sessions: args.sessions,
            threads: args.threads,
            size: matches!(args.op, Op::Get | Op::Put).then_some(args.size),
            requested,
            done,
            errors: tally.errors.total,
            error_messages: std::mem::take(&mut tally.errors.by_message)
                .into_iter()
                .map(|(message, count)| ErrorCount { message, count })
                .collect(),
            setup_errors,
            stopped_early,
            wall_secs: secs,
            ops_per_sec: ratio(done as f64, secs),
            bytes: tally.bytes,
            mb_per_sec: ratio(tally.bytes as f64 / 1e6, secs),
            latency_ms: Percentiles::of(&mut tally.latencies),
            client_cpu_secs: client_cpu.as_secs_f64(),
            client_cpu_per_op_us: per_op(client_cpu),
            client_cpu_percent: percent(client_cpu),
            server_pid: args.server_pid,
            server_cpu_secs: server_cpu.map(|c| c.as_secs_f64()),
            server_cpu_per_op_us: server_cpu.map(per_op),
            server_cpu_percent: server_cpu.map(percent),
            held: held.map(|(n, _)| n),
            hold_secs: held.map(|_| args.hold),
            server_cpu_while_held_secs: held.and_then(|(_, c)| c).map(|c| c.as_secs_f64()),
            load_average: load_average(),
        }
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Lines for people.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let what = match self.size {
            Some(size) => format!("{:?} of {size} bytes", self.op).to_lowercase(),
            None => format!("{:?}", self.op).to_lowercase(),
        };
        let _ = writeln!(
            t,
            "ferry bench: {what} over {}, {} session(s), {} thread(s)",
            self.protocol, self.sessions, self.threads
        );
        let _ = writeln!(
            t,
            "  done      {} of {}, {} error(s), {:.3} s, {:.0} op/s, {:.1} MB/s{}",
            self.done,
            self.requested,
            self.errors,
            self.wall_secs,
            self.ops_per_sec,
            self.mb_per_sec,
            if self.stopped_early {
                " (stopped early: --max-secs)"
            } else {
                ""
            }
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            t,
            "  latency   p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            l.p50, l.p90, l.p99, l.max
        );
        let _ = writeln!(
            t,
            "  client    CPU {:.2} s ({:.0}% of one core), {:.0} µs per op",
            self.client_cpu_secs, self.client_cpu_percent, self.client_cpu_per_op_us
        );
        if let (Some(pid), Some(cpu), Some(per), Some(pc)) = (
            self.server_pid,
            self.server_cpu_secs,
            self.server_cpu_per_op_us,
            self.server_cpu_percent,
        ) {
            let _ = writeln!(
                t,
                "  server    CPU {cpu:.2} s ({pc:.0}% of one core), {per:.0} µs per op (pid {pid} and its children)"
            );
        }
        if let (Some(held), Some(hold)) = (self.held, self.hold_secs) {
            let cpu = self
                .server_cpu_while_held_secs
                .map(|c| format!(", server CPU meanwhile {c:.2} s"))
                .unwrap_or_default();
            let _ = writeln!(t, "  held      {held} session(s) answered after {hold} s{cpu}");
        }
        if self.setup_errors > 0 {
            let _ = writeln!(
                t,
                "  setup     {} session(s) could not be set up",
                self.setup_errors
            );
        }
        for e in &self.error_messages {
            let _ = writeln!(t, "  error     {} × {}", e.count, e.message);
        }
        if let Some(load) = self.load_average {
            let _ = writeln!(t, "  load      {load:.2} (1-minute average)");
        }
        t
    }
}

fn protocol(scheme: &str) -> &'static str {
    match scheme {
        "sftp" => "sftp",
        "ftpes" => "ftpes",
        "ftps" => "ftps",
        _ => "ftp",
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}
