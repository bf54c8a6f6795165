//! Compiling a component in a process of its own, under a time and a memory
//! cap, so a compile bomb (a huge component, thousands of functions) costs
//! the host nothing but a refusal.
//!
//! The parent ([`Compiler::compile`]) starts the `runway` binary again with
//! a hidden subcommand ([`compile_child`]), hands it the component on stdin
//! and reads the compiled artifact from stdout. The child runs with
//! `RLIMIT_AS` at the memory cap and `RLIMIT_CPU` as a backstop (the time
//! cap times the cores); the parent kills it once the time cap passes. The child compiles with
//! the same code-shaping settings as the serving engine ([`code_config`]),
//! so what it returns loads there (wasmtime checks that again on load).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;
use wasmtime::{Config, Engine};

/// Default compile time cap: the compiler's CPU time (all its threads),
/// seconds. An 18 MB Python agent takes 11–39 s of wall time on two quiet
/// cores, up to about 80 s of CPU.
pub const DEFAULT_COMPILE_SECS: u64 = 120;
/// Default compile memory cap (address space of the compiler process).
pub const DEFAULT_COMPILE_MIB: u64 = 2048;
/// A compile may take this many times its cap in wall-clock time on a
/// machine too busy to give it its CPU time.
const WALL_FACTOR: u32 = 5;
/// Exit code of a child that refused the component as invalid.
const INVALID: i32 = 3;

/// The engine settings that shape compiled code (fuel, epochs): the same
/// for the serving engine and for a compiler process.
pub(crate) fn code_config() -> Config {
    let mut config = Config::new();
    config.consume_fuel(true).epoch_interruption(true);
    config
}

/// How to start a compiler process, and its caps.
#[derive(Clone, Debug)]
pub struct Compiler {
    /// The `runway` binary.
    pub program: PathBuf,
    /// Arguments that select the hidden compile subcommand.
    pub args: Vec<String>,
    pub max_time: Duration,
    pub max_memory_mib: u64,
}

/// Why a component was not compiled.
#[derive(Debug, Error)]
pub enum CompileError {
    #[error("compiling took longer than the compile time cap of {} s", .0.as_secs_f64())]
    TooSlow(Duration),
    #[error(
        "the compiler process died ({how}); the component likely needs more than the \
         compile memory cap of {cap_mib} MiB"
    )]
    Died { how: String, cap_mib: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot run the compiler process {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

impl Compiler {
    /// Compiles `bytes` in a child process; returns the serialized artifact.
    pub fn compile(&self, bytes: &[u8]) -> Result<Vec<u8>, CompileError> {
        let spawn_err = |source| CompileError::Spawn {
            program: self.program.display().to_string(),
            source,
        };
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let memory = self.max_memory_mib.saturating_mul(1 << 20);
        // CPU time counts every compiling thread: a backstop well past what
        // the wall-clock cap allows, which ends the child first.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let cpu = self
            .max_time
            .as_secs()
            .saturating_add(1)
            .saturating_mul(threads);
        // SAFETY: the closure runs between fork and exec and only makes
        // setrlimit system calls, which are async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || {
                use rustix::process::{Resource, Rlimit, setrlimit};
                let cap = |soft: u64, hard: u64| Rlimit {
                    current: Some(soft),
                    maximum: Some(hard),
                };
                setrlimit(Resource::As, cap(memory, memory))?;
                // SIGXCPU at the soft limit, SIGKILL only past the hard one.
                setrlimit(Resource::Cpu, cap(cpu, cpu.saturating_add(5)))?;
                setrlimit(Resource::Core, cap(0, 0))?;
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(spawn_err)?;
        let (mut stdin, mut stdout, mut stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        std::thread::scope(|scope| {
            // A child that dies early closes its stdin: the error is its exit.
            scope.spawn(move || {
                let _ = stdin.write_all(bytes);
            });
            let output = scope.spawn(move || {
                let mut out = Vec::new();
                stdout.read_to_end(&mut out).map(|_| out)
            });
            let errors = scope.spawn(move || {
                let mut text = Vec::new();
                let _ = (&mut stderr)
                    .take(crate::limits::MAX_REASON as u64)
                    .read_to_end(&mut text);
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                String::from_utf8_lossy(&text).into_owned()
            });
            // The cap is on the compiler's work — its CPU time, which a busy
            // machine does not stretch — with a wall-clock backstop for a
            // compiler starved outright.
            let start = Instant::now();
            let pid = child.id();
            let within = || {
                let worked = cpu_time(pid).unwrap_or_else(|| start.elapsed());
                worked < self.max_time && start.elapsed() < self.max_time * WALL_FACTOR
            };
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break status,
                    Ok(None) if within() => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) | Err(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(CompileError::TooSlow(self.max_time));
                    }
                }
            };
            let output = output.join().ok().and_then(Result::ok);
            let errors = errors.join().unwrap_or_default();
            match (status.code(), output) {
                (Some(0), Some(artifact)) => Ok(artifact),
                (Some(INVALID), _) => Err(CompileError::Invalid(errors.trim().to_string())),
                _ => {
                    use std::os::unix::process::ExitStatusExt;
                    if status.signal() == Some(rustix::process::Signal::XCPU.as_raw()) {
                        return Err(CompileError::TooSlow(self.max_time));
                    }
                    Err(CompileError::Died {
                        how: status.to_string(),
                        cap_mib: self.max_memory_mib,
                    })
                }
            }
        })
    }
}

/// CPU time (user + system, all threads) process `pid` has used so far.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, which may hold
    // spaces): state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split(' ').skip(11);
    let ticks = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second();
    Some(Duration::from_millis(ticks * 1000 / per_second))
}

/// The compiler process: reads a component on stdin, writes the compiled
/// artifact on stdout; exit code [`INVALID`] with the reason on stderr when
/// the component does not compile.
pub fn compile_child() -> std::process::ExitCode {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("cannot read the component: {e}");
        return std::process::ExitCode::from(INVALID as u8);
    }
    let compiled =
        Engine::new(&code_config()).and_then(|engine| engine.precompile_component(&bytes));
    match compiled {
        Ok(artifact) => match std::io::stdout().write_all(&artifact) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::FAILURE,
        },
        Err(e) => {
            eprintln!("{e:#}");
            std::process::ExitCode::from(INVALID as u8)
        }
    }
}
