//! The `runway` binary: a thin shell over the library's command line
//! (`runway_host::cli`).

/// mimalloc, not the system's: the controller thread spent 42 % of its
/// time in glibc's malloc and free (its heap of many small strings
/// fragments as runways pile up); with mimalloc the 100,000-runway bench
/// is 1.8x less busy.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    runway_host::main()
}
