//! The `runway` binary: a thin shell over the library's command line
//! (`runway_host::cli`).

fn main() -> std::process::ExitCode {
    runway_host::main()
}
