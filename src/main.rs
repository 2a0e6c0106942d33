use std::process::ExitCode;

/// mimalloc: faster than the system allocator, and musl's own is slow.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[ntex::main]
async fn main() -> ExitCode {
    scaleout::cli::run().await
}
