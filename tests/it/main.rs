//! Runway's integration tests: one binary, real components built from
//! `plugins/` by host/build.rs, real wasmtime, real files.

mod agents;
mod audit_crash;
mod audit_tamper;
mod audit_trail;
mod cli;
mod commit_crash;
mod controller;
mod controller_model;
mod data;
mod doors;
mod exit_codes;
mod flood;
mod host_faults;
mod labels;
mod locks;
mod mcp;
mod nightly;
mod openapi;
mod page;
mod per_run;
mod plans;
mod plugins;
mod policy;
mod probe;
mod restart;
mod rights;
mod sandbox;
mod scaffold;
mod serve;
mod server;
mod signing;
mod start;
mod times;
mod tls;
mod wit_versions;
