//! The one integration test binary: black-box tests of the real `scaleout` binary against
//! real `redis-server` processes, one module per concern, sharing the harness of
//! [`common`] (compiled once). Run one module with `cargo test --test integration jobs::`.

mod common;

mod api;
mod cli;
mod jobs;
mod load;
mod scripts;
mod security;
mod sentinel;
mod web;
