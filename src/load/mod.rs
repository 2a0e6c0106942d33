//! `scaleout load`: a load generator that checks what this project claims, not just speed.
//!
//! Each virtual user keeps its own cookie jar and keep-alive connection, like a browser
//! tab. Besides requests/s and latency percentiles it reports every non-2xx by status,
//! how the replicas shared the traffic (and when each was first seen), and a session
//! check ([`session`]). Exit status 1 on any failed request, broken session or stopped
//! user, and when the run checked nothing, so scripts and CI can rely on it.
//!
//! The tool does not trust the server: every answer goes through [`crate::http_client`],
//! which turns anything malformed into a counted failure, never a panic or an unbounded
//! allocation.
//!
//! - [`options`]: the flags; [`session`]: the session check; [`report`]: the figures and
//!   the verdict.

pub mod options;
pub mod report;
pub mod session;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

pub use options::{Options, USAGE};
pub use report::Report;

use report::Tally;
use session::{Check, Session};

use crate::http_client::Client;
use crate::routes::COOKIE;

/// Runs the virtual users until the duration or the request budget is spent.
pub async fn run(opts: Options) -> Report {
    let start = Instant::now();
    // None: a duration too long to add to now, i.e. no end but the request budget.
    let deadline = start.checked_add(opts.duration);
    let sent = Rc::new(Cell::new(0u64));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let users: Vec<_> = (0..opts.concurrency)
        .map(|user| {
            let (opts, sent, tally) = (opts.clone(), sent.clone(), tally.clone());
            ntex::rt::spawn(async move {
                let budget = || match opts.requests {
                    Some(n) => {
                        let taken = sent.get() < n;
                        sent.set(sent.get() + u64::from(taken));
                        taken
                    }
                    None => deadline.is_none_or(|d| Instant::now() < d),
                };
                user_loop(user, &opts, start, &tally, budget).await;
            })
        })
        .collect();
    for user in users {
        // A user only stops early by panicking; its requests are already counted.
        if user.await.is_err() {
            tally.borrow_mut().user_failed();
        }
    }
    let tally = tally.take();
    tally.finish(start.elapsed().as_secs_f64(), opts.cookies)
}

async fn user_loop(
    user: usize,
    opts: &Options,
    start: Instant,
    tally: &RefCell<Tally>,
    mut budget: impl FnMut() -> bool,
) {
    let mut client = Client::new(opts.addr, opts.host.clone(), opts.timeout);
    let mut session = Session::default();
    let (mut checked, mut broken) = (false, false);
    while budget() {
        let cookie = session
            .sid()
            .filter(|_| opts.cookies)
            .map(|sid| format!("{COOKIE}={sid}"));
        let headers: Vec<_> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        let began = Instant::now();
        let result = client.get(&opts.path, &headers).await;
        let latency = began.elapsed();
        let at_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                let mut t = tally.borrow_mut();
                t.request(at_ms, latency, None);
                t.error(e.to_string());
                session.unsure();
                continue;
            }
        };
        tally
            .borrow_mut()
            .request(at_ms, latency, Some(response.status));
        if !(200..300).contains(&response.status) {
            session.unsure();
            continue;
        }
        // A 2xx that is not JSON (a static file, or something garbled) proves nothing
        // about the session, so the next step may be one larger.
        let Ok(visit) = serde_json::from_slice::<serde_json::Value>(&response.body) else {
            session.unsure();
            continue;
        };
        if let Some(name) = visit["served_by"].as_str() {
            tally.borrow_mut().served_by(name, at_ms);
        }
        if !opts.cookies {
            continue;
        }
        let check = session.check(user, at_ms, &visit, &response);
        if check != Check::NotAVisit && !checked {
            checked = true;
            tally.borrow_mut().session_checked();
        }
        if let Check::Broken(example) = check
            && !broken
        {
            broken = true;
            tally.borrow_mut().session_broken(example);
        }
    }
}
