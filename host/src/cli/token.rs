//! `runway token add|list|remove`: the callers of a server's API other than
//! its admin, in the tokens file (`crate::api::access`). A new token is
//! printed once and kept nowhere but by its holder; the server reads the
//! file again as it changes, so no restart is needed.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use runway_audit::render::escape;

use super::{AuditDir, BAD_INPUT, Failure};
use crate::api::access::{self, Role, TokensError};
use crate::api::token;
use crate::files::ReadCaps;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Add a token called NAME with its roles; prints the token once.
    Add {
        name: String,
        /// viewer, operator, approver, auditor or admin; repeat for more.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<Role>,
        #[command(flatten)]
        file: TokensFile,
    },
    /// The tokens' names and roles.
    List {
        #[command(flatten)]
        file: TokensFile,
    },
    /// Remove the token called NAME (refused from the next request on).
    Remove {
        name: String,
        #[command(flatten)]
        file: TokensFile,
    },
}

#[derive(Args)]
pub struct TokensFile {
    /// The tokens file. Default: runway-tokens.toml beside the audit
    /// folder, where `runway serve` looks.
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    #[command(flatten)]
    audit: AuditDir,
}

impl TokensFile {
    fn path(&self) -> PathBuf {
        self.tokens_file
            .clone()
            .unwrap_or_else(|| access::tokens_beside(&token::beside(&self.audit.path)))
    }
}

pub fn run(command: TokenCommand) -> Result<(), Failure> {
    let caps = ReadCaps::default();
    let bad = |e: TokensError| Failure::new(BAD_INPUT, e);
    match command {
        TokenCommand::Add { name, roles, file } => {
            let path = file.path();
            let token = access::add_token(&path, &name, &roles, &caps).map_err(bad)?;
            eprintln!(
                "runway: token {} ({}) added to {}; it is shown this once:",
                escape(&name),
                roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(","),
                escape(&path.display().to_string())
            );
            println!("{token}");
        }
        TokenCommand::List { file } => {
            for entry in access::read_tokens(&file.path(), &caps).map_err(bad)? {
                let roles: Vec<&str> = entry.roles.iter().map(|r| r.name()).collect();
                println!("{:<24} {}", escape(&entry.name), roles.join(","));
            }
        }
        TokenCommand::Remove { name, file } => {
            let path = file.path();
            if !access::remove_token(&path, &name, &caps).map_err(bad)? {
                return Err(Failure::new(
                    BAD_INPUT,
                    anyhow::anyhow!(
                        "{}: no token called {}",
                        escape(&path.display().to_string()),
                        escape(&name)
                    ),
                ));
            }
            eprintln!("runway: token {} removed", escape(&name));
        }
    }
    Ok(())
}
