use std::process::ExitCode;

/// mimalloc: faster than the system allocator, and musl's own is slow.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_allow_thp` in mimalloc.h's `mi_option_t` (v3, as pinned by Cargo.lock);
/// libmimalloc-sys names no constant for it. `tests/integration/cli.rs` checks the effect, so a
/// renumbering in an upgrade fails a test instead of passing silently.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Makes "no transparent huge pages" mimalloc's default for this binary: with THP a
/// process's peak RSS is about 2.6 times higher (16 vs 6 MB measured) for a few percent of
/// CPU. `MIMALLOC_ALLOW_THP=1` still turns them back on: a default, unlike `mi_option_set`,
/// yields to the environment. It must run before mimalloc initialises, which happens in a C
/// constructor of priority 101 (it is then that mimalloc calls `prctl(PR_SET_THP_DISABLE)`);
/// `.init_array.00100` runs before it. The `no_thp` cargo feature is not enough: in this
/// version it only skips mimalloc's `madvise`, while a kernel set to THP "always" still
/// backs its arenas with huge pages.
#[used]
#[unsafe(link_section = ".init_array.00100")]
static NO_THP_BY_DEFAULT: extern "C" fn() = no_thp_by_default;

extern "C" fn no_thp_by_default() {
    // SAFETY: sets one entry in mimalloc's static option table; it allocates nothing and
    // runs single-threaded, before main and before mimalloc reads its options.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_ALLOW_THP, 0) }
}

#[ntex::main]
async fn main() -> ExitCode {
    scaleout::cli::run().await
}
