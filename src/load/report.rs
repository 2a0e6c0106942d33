//! What a run saw, gathered as it happens and summed up at the end.
//!
//! Memory stays flat however long the run: latencies go into an HDR histogram (fixed size,
//! three significant digits), failures keep only their first and last time, and everything
//! a server could make grow (replica names, error texts) is capped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this are recorded as this (microseconds): one hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Examples of broken sessions and of errors kept for a person to read.
const EXAMPLES: usize = 5;
/// Distinct replica names kept; a server that invents more is summed under [`OTHERS`].
const MAX_REPLICAS: usize = 256;
const OTHERS: &str = "(others)";
/// Longest replica name or example kept, in characters: the server chooses them.
const MAX_TEXT: usize = 200;

/// How one replica shared the traffic.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Replica {
    pub requests: u64,
    /// Milliseconds from the start of the run to this replica's first and last answer.
    pub first_ms: u64,
    pub last_ms: u64,
}

/// The whole run's figures; `--json` prints exactly this.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub requests: u64,
    pub ok: u64,
    /// Non-2xx answers and transport errors (as status 0).
    pub failures: u64,
    pub by_status: BTreeMap<u16, u64>,
    /// Requests with no usable answer: refused, reset, timed out or malformed.
    pub transport_errors: u64,
    /// The first few distinct transport errors, for a person to read.
    pub error_examples: Vec<String>,
    pub first_failure_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub served_by: BTreeMap<String, Replica>,
    pub sessions_checked: u64,
    pub broken_sessions: u64,
    /// The first few broken-session events, for a person to read.
    pub broken_examples: Vec<String>,
    /// Virtual users that stopped before the end (a bug in this tool, never the server's).
    pub failed_users: u64,
    /// Why the run failed, one line each; empty when it passed.
    pub problems: Vec<String>,
}

/// The running totals, shared by every virtual user (they all run on one thread), so
/// what a user recorded survives it even if it stops early.
pub struct Tally {
    latency_us: Histogram<u64>,
    report: Report,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant, valid histogram bounds"),
            report: Report::default(),
        }
    }
}

impl Tally {
    /// A request ended, with an answer (`status`) or a transport error (`None`).
    pub fn request(&mut self, at_ms: u64, latency: Duration, status: Option<u16>) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(us.clamp(1, MAX_LATENCY_US));
        *self
            .report
            .by_status
            .entry(status.unwrap_or(0))
            .or_default() += 1;
        if !status.is_some_and(|s| (200..300).contains(&s)) {
            let r = &mut self.report;
            r.first_failure_ms.get_or_insert(at_ms);
            r.last_failure_ms = Some(at_ms);
        }
    }

    pub fn error(&mut self, error: String) {
        keep_example(&mut self.report.error_examples, error);
    }

    pub fn served_by(&mut self, name: &str, at_ms: u64) {
        let name = truncate(name);
        let name = name.as_str();
        let replicas = &mut self.report.served_by;
        let name = if replicas.len() < MAX_REPLICAS || replicas.contains_key(name) {
            name
        } else {
            OTHERS
        };
        let r = replicas.entry(name.to_string()).or_insert(Replica {
            first_ms: at_ms,
            ..Replica::default()
        });
        r.requests += 1;
        r.last_ms = at_ms;
    }

    /// A user's session was checked for the first time.
    pub fn session_checked(&mut self) {
        self.report.sessions_checked += 1;
    }

    /// A user's session broke for the first time.
    pub fn session_broken(&mut self, example: String) {
        self.report.broken_sessions += 1;
        keep_example(&mut self.report.broken_examples, example);
    }

    pub fn user_failed(&mut self) {
        self.report.failed_users += 1;
    }

    /// The report, judged: `sessions` says whether sessions were to be checked.
    pub fn finish(self, seconds: f64, sessions: bool) -> Report {
        let mut r = self.report;
        let h = self.latency_us;
        r.seconds = seconds;
        r.requests = h.len();
        r.ok = r
            .by_status
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        r.failures = r.requests - r.ok;
        r.transport_errors = r.by_status.get(&0).copied().unwrap_or(0);
        r.rps = r.requests as f64 / seconds.max(1e-9);
        if r.requests > 0 {
            let ms = |us: u64| us as f64 / 1000.0;
            r.p50_ms = ms(h.value_at_quantile(0.50));
            r.p90_ms = ms(h.value_at_quantile(0.90));
            r.p99_ms = ms(h.value_at_quantile(0.99));
            r.max_ms = ms(h.max());
        }
        r.problems = problems(&r, sessions);
        r
    }
}

fn keep_example(examples: &mut Vec<String>, example: String) {
    let example = truncate(&example);
    if examples.len() < EXAMPLES && !examples.contains(&example) {
        examples.push(example);
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

/// Why a run fails. A run that checked nothing fails too: "0 failures" must mean that
/// requests were sent and, with cookies, that sessions were actually checked.
fn problems(r: &Report, sessions: bool) -> Vec<String> {
    let mut out = Vec::new();
    if r.requests == 0 {
        out.push("no request was sent".to_string());
    }
    if r.failures > 0 {
        out.push(format!("{} of {} requests failed", r.failures, r.requests));
    }
    if r.broken_sessions > 0 {
        out.push(format!("{} sessions broke", r.broken_sessions));
    }
    if r.failed_users > 0 {
        out.push(format!("{} virtual users stopped early", r.failed_users));
    }
    if sessions && r.requests > 0 && r.sessions_checked == 0 {
        out.push(
            "no session was checked: no 2xx answer carried session_id and session_count \
             (point --url at a visit, e.g. /api/, or pass --no-cookies)"
                .to_string(),
        );
    }
    out
}

impl Report {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line saying whether the run passed, and if not, why.
    pub fn verdict(&self) -> String {
        if self.passed() {
            "PASS".to_string()
        } else {
            format!("FAIL: {}", self.problems.join("; "))
        }
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "requests     {} in {:.1}s, {:.0} req/s",
            self.requests, self.seconds, self.rps
        );
        let _ = writeln!(
            out,
            "latency      p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        );
        let _ = writeln!(out, "failed       {}", self.failures);
        for (status, n) in &self.by_status {
            if !(200..300).contains(status) {
                let label = if *status == 0 {
                    "transport".to_string()
                } else {
                    status.to_string()
                };
                let _ = writeln!(out, "  {label:<10} {n}");
            }
        }
        for e in &self.error_examples {
            let _ = writeln!(out, "  {e}");
        }
        let _ = writeln!(out, "served_by");
        for (name, r) in &self.served_by {
            let share = 100.0 * r.requests as f64 / self.ok.max(1) as f64;
            let _ = writeln!(
                out,
                "  {name:<24} {:>8} ({share:.1}%)  first at {:.1}s",
                r.requests,
                r.first_ms as f64 / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "sessions     {} checked, {} broken",
            self.sessions_checked, self.broken_sessions
        );
        for e in &self.broken_examples {
            let _ = writeln!(out, "  {e}");
        }
        if self.failed_users > 0 {
            let _ = writeln!(out, "users        {} stopped early", self.failed_users);
        }
        let _ = write!(out, "result       {}", self.verdict());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_checked_nothing_fails() {
        let empty = Tally::default().finish(1.0, true);
        assert_eq!(empty.problems, ["no request was sent"]);

        let mut t = Tally::default();
        t.request(0, Duration::from_millis(2), Some(200));
        let unchecked = t.finish(1.0, true);
        assert!(
            unchecked
                .verdict()
                .starts_with("FAIL: no session was checked")
        );

        let mut t = Tally::default();
        t.request(0, Duration::from_millis(2), Some(200));
        assert!(
            t.finish(1.0, false).passed(),
            "no session to check without cookies"
        );
    }

    #[test]
    fn a_stopped_user_fails_the_run() {
        let mut t = Tally::default();
        t.request(0, Duration::from_millis(2), Some(200));
        t.session_checked();
        t.user_failed();
        let r = t.finish(1.0, true);
        assert_eq!(r.failed_users, 1);
        assert_eq!(r.problems, ["1 virtual users stopped early"]);
    }

    #[test]
    fn what_the_server_names_is_capped() {
        let mut t = Tally::default();
        for i in 0..300 {
            t.served_by(&format!("{i}{}", "x".repeat(1000)), 0);
        }
        let r = t.finish(1.0, false);
        assert_eq!(r.served_by.len(), MAX_REPLICAS + 1);
        assert_eq!(r.served_by[OTHERS].requests, 300 - MAX_REPLICAS as u64);
        assert!(r.served_by.keys().all(|k| k.chars().count() <= MAX_TEXT));
    }

    #[test]
    fn latencies_keep_three_significant_digits_in_fixed_memory() {
        let mut t = Tally::default();
        for us in 1..=100_000u64 {
            t.request(0, Duration::from_micros(us), Some(200));
        }
        t.request(0, Duration::from_secs(86_400), Some(200));
        let r = t.finish(1.0, false);
        assert_eq!(r.requests, 100_001);
        assert!((r.p50_ms - 50.0).abs() < 0.05, "{}", r.p50_ms);
        assert!((r.p99_ms - 99.0).abs() < 0.1, "{}", r.p99_ms);
        assert!(
            (r.max_ms - 3_600_000.0).abs() < 3_600.0,
            "capped at an hour: {}",
            r.max_ms
        );
    }
}
