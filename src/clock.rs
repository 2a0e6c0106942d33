//! The wall clock, in the one format scaleout stores and shows: milliseconds since the Unix
//! epoch. A module of its own because the connector (when it last switched primaries),
//! the fleet (heartbeats) and the jobs (leases, retry times) all stamp times, and the
//! connector sits below the other two.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the timestamp format of every API response; 0 if
/// the clock is set before 1970.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
