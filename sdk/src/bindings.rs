//! Guest bindings generated from `wit/agent.wit` (world `runway:agent/agent`).
//!
//! Public only so that [`export_agent!`](crate::export_agent) can reach the
//! generated `Guest` trait and export macro from an agent crate; agents use
//! the typed API at the crate root instead. The WIT `error` variant is mapped
//! onto [`crate::Error`], so the bindings and the SDK share one error type.

wit_bindgen::generate!({
    world: "agent",
    path: "../wit",
    with: {
        "runway:agent/types@0.1.3/error": crate::Error,
    },
    additional_derives: [PartialEq, Eq],
    pub_export_macro: true,
    export_macro_name: "__export_agent_world",
    default_bindings_module: "runway_sdk::bindings",
});
