//! The `runway` command line for the CLI tests: the same `runway_host::cli`
//! as the host's own binary, built by cargo alongside the test binary.

fn main() -> std::process::ExitCode {
    runway_host::main()
}
