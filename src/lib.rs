//! scaleout: a stateful web app that scales out because its state lives in Redis.
//!
//! Layout, one file per concern. Each module uses only modules below it: their order,
//! bottom to top, is written once, in `layers` (a test that fails when a module uses one
//! above it, so the modules form no circle).
//!
//! - [`cli`]: subcommands, exit codes; `main.rs` only calls it.
//! - [`config`]: every setting, from the environment, into one typed struct; its table
//!   `VARS` is the one home of each variable's name, default, meaning and rule.
//! - [`telemetry`]: JSON or human log lines.
//! - [`startup`]: binds, runs and drains the HTTP servers.
//! - [`shutdown`]: signals and the drain flag behind `/healthz`.
//! - [`clock`]: the wall clock in Unix milliseconds, every timestamp stored or shown.
//! - [`routes`]: the API, one module per feature, and [`error`], its error type (`ApiError`,
//!   made from the Redis layer's error in one place). Each response body is a Rust type;
//!   `routes/contract.rs` (a test) writes the dashboard's TypeScript types and decoder
//!   schema from them.
//! - [`store`]: Redis calls bounded in time (and WAITed on after writes when asked), and
//!   the Redis layer's error (`RedisFailure`) that store, fleet and jobs return; [`keys`]:
//!   every key name; [`scripts`]: every Lua script, one `.lua` file each, touching only
//!   keys passed in.
//! - `acl` (a test): the Redis ACL rules of each role, generated from [`keys`] and the
//!   scripts into `deploy/redis/`.
//! - [`connector`]: where Redis is: one address, or the primary the Sentinels name;
//!   [`auth`]: who scaleout is to Redis (ACL user, password file, TLS).
//! - [`fleet`]: heartbeats behind `/instances`.
//! - [`jobs`]: the reliable job queue and `scaleout worker` (with its own error type).
//! - [`metrics`]: counters and the latency histogram behind `/metrics`, and their label sets.
//! - [`web`]: the dashboard's static files, for `scaleout web`.
//! - [`load`]: the load generator that checks sessions, for `scaleout load`.
//! - [`healthcheck`]: the probe a distroless image uses as its Docker HEALTHCHECK.
//! - [`http_client`]: the one HTTP/1.1 client, behind `load`, `healthcheck` and the tests.

#[cfg(test)]
mod acl;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connector;
pub mod error;
pub mod fleet;
pub mod healthcheck;
pub mod http_client;
pub mod jobs;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod load;
pub mod metrics;
pub mod routes;
pub mod scripts;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
