//! Logging: JSON lines (one object per event, fields at the top level) for machines, or the
//! plain human format, both filtered by `RUST_LOG` syntax.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.rust_log).expect("Settings checked RUST_LOG");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}
