//! The [`Agent`] trait and the [`export_agent!`](crate::export_agent) macro
//! that exports an implementation as the world's `run`.

use crate::{Context, Error};

/// An agent: one run of it is one call of [`Agent::run`].
///
/// Returning `Ok(bytes)` succeeds the run with `bytes` as its output (the
/// host commits the run's staged writes); returning `Err` fails it (staged
/// writes are discarded). A panic traps the instance and fails the run too.
pub trait Agent {
    /// Run once against `ctx`; the returned bytes are the run's output.
    fn run(ctx: &Context) -> Result<Vec<u8>, Error>;
}

/// Glue called by [`export_agent!`](crate::export_agent): fetch the run's
/// context once and hand it to the agent.
#[doc(hidden)]
pub fn __run<A: Agent>() -> Result<Vec<u8>, Error> {
    A::run(&Context::from_host())
}

/// Export `$agent` (a type implementing [`Agent`]) as this component's `run`.
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
///     fn run(_ctx: &Context) -> Result<Vec<u8>, Error> {
///         Ok(b"{}".to_vec())
///     }
/// }
///
/// runway_sdk::export_agent!(Noop);
/// ```
#[macro_export]
macro_rules! export_agent {
    ($agent:ty) => {
        const _: () = {
            struct __RunwayExport;

            impl $crate::bindings::Guest for __RunwayExport {
                fn run() -> ::core::result::Result<::std::vec::Vec<u8>, $crate::Error> {
                    $crate::__run::<$agent>()
                }
            }

    $crate::bindings::__export_agent_world!(__RunwayExport with_types_in $crate::bindings);
        };
    };
}
