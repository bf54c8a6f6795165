//! Plugins as an operator ships them: `NAME.wasm` with its grants
//! (`NAME.toml`, [`grants`]) and optionally its author's signature
//! ([`signing`]), read and compiled by the one [`loader`] that both the
//! start-up load and the folder watch ([`watch`]) use.

pub mod grants;
pub mod loader;
pub mod signing;
pub mod watch;
