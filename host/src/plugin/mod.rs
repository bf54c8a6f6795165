//! Plugins as an operator ships them: `NAME.wasm` with its grants
//! (`NAME.toml`, [`grants`]) and optionally its author's signature
//! ([`signing`]), read and compiled by the one [`loader`] that both the
//! start-up load and the folder watch ([`watch`]) use.

pub(crate) mod breaker;
pub(crate) mod grants;
pub(crate) mod loader;
pub(crate) mod signing;
pub(crate) mod watch;

pub use grants::Grants;
pub use loader::{Plugin, Plugins};
pub use watch::PluginFolder;
