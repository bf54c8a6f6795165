//! The [`Agent`] trait and the [`export_agent!`](crate::export_agent) macro
//! that exports an implementation as the world's `run`.

use serde::Serialize;

use crate::{Context, Error};

/// An agent: one run of it is one call of [`Agent::run`].
///
/// Returning `Ok(value)` succeeds the run with `value`, as JSON, for its
/// output (the host commits the run's staged writes); returning `Err` fails
/// it (staged writes are discarded). A panic traps the instance and fails the
/// run too. Output that must be exact bytes of JSON can be returned as a
/// `Box<serde_json::value::RawValue>`, which is written verbatim.
pub trait Agent {
    /// Run once against `ctx`; the returned value is the run's output.
    fn run(ctx: &Context) -> Result<impl Serialize, Error>;
}

/// An agent whose output is exact bytes rather than JSON (text with its own
/// format, a digest, ...): the same as [`Agent`] otherwise. Export it with
/// `export_agent!(raw MyAgent)`.
pub trait RawAgent {
    /// Run once against `ctx`; the returned bytes are the run's output.
    fn run(ctx: &Context) -> Result<Vec<u8>, Error>;
}

/// Glue called by [`export_agent!`](crate::export_agent): fetch the run's
/// context once, hand it to the agent, encode its output.
#[doc(hidden)]
pub fn __run<A: Agent>() -> Result<Vec<u8>, Error> {
    encode_output(&A::run(&Context::from_host())?)
}

/// A run's output as JSON; a value that does not serialize fails the run.
pub(crate) fn encode_output<T: Serialize + ?Sized>(output: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(output).map_err(|e| Error::Invalid(format!("output: {e}")))
}

/// Glue called by `export_agent!(raw ..)`.
#[doc(hidden)]
pub fn __run_raw<A: RawAgent>() -> Result<Vec<u8>, Error> {
    A::run(&Context::from_host())
}

/// Export `$agent` (a type implementing [`Agent`]) as this component's `run`;
/// `export_agent!(raw $agent)` exports a [`RawAgent`].
///
/// Use it once per plugin crate, at module level. It fetches the run's
/// [`Context`] once (one `context.info` host call) and calls `$agent::run`.
///
/// ```no_run
/// use runway_sdk::{Agent, Context, Error};
///
/// struct Noop;
///
/// impl Agent for Noop {
///     fn run(_ctx: &Context) -> Result<impl serde::Serialize, Error> {
///         Ok("nothing to do")
///     }
/// }
///
/// runway_sdk::export_agent!(Noop);
/// ```
#[macro_export]
macro_rules! export_agent {
    ($agent:ty) => {
        $crate::export_agent!(@with __run $agent);
    };
    (raw $agent:ty) => {
        $crate::export_agent!(@with __run_raw $agent);
    };
    (@with $glue:ident $agent:ty) => {
        const _: () = {
            struct __RunwayExport;

            impl $crate::bindings::Guest for __RunwayExport {
                fn run() -> ::core::result::Result<::std::vec::Vec<u8>, $crate::Error> {
                    $crate::$glue::<$agent>()
                }
            }

    $crate::bindings::__export_agent_world!(__RunwayExport with_types_in $crate::bindings);
        };
    };
}
