//! `encache-local user create|token|delete`: local Cognito users, signed up and signed in
//! through the stack's trigger functions as Cognito runs them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Subcommand;

use crate::emulators::cognito::{self, Pool};
use crate::stack::Stack;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Sign a user up as Cognito would (pre-sign-up, create + confirm, post-confirmation).
    Create {
        email: String,
        #[arg(long)]
        password: String,
        /// Fail unless every trigger is wired to the pool (a deploy's smoke test).
        #[arg(long)]
        require_wired_triggers: bool,
    },
    /// Delete a user from the pool (its data goes with `DELETE /v1/me`).
    Delete { email: String },
    /// Print an ID token for the user that the local HTTP API accepts, issued as Cognito
    /// issues it: the pool's pre-token-generation trigger runs and its claims are in it.
    Token {
        email: String,
        #[arg(long)]
        password: String,
        /// Print the access token instead of the ID token.
        #[arg(long, conflicts_with = "both")]
        access: bool,
        /// Print both: the ID token on the first line, the access token on the second.
        #[arg(long)]
        both: bool,
        /// InitiateAuth's ClientMetadata, passed to the trigger (repeatable).
        #[arg(long = "client-metadata", value_name = "KEY=VALUE", value_parser = key_value)]
        client_metadata: Vec<(String, String)>,
    },
}

pub async fn run(stack: &Stack, command: UserCommand) -> anyhow::Result<ExitCode> {
    let pool = Pool::from_stack(stack)?;
    match command {
        UserCommand::Create {
            email,
            password,
            require_wired_triggers,
        } => {
            cognito::create_checked(stack, &pool, &email, &password, require_wired_triggers)
                .await?;
        }
        UserCommand::Token {
            email,
            password,
            access,
            both,
            client_metadata,
        } => {
            let metadata: BTreeMap<String, String> = client_metadata.into_iter().collect();
            let tokens = cognito::tokens(stack, &pool, &email, &password, &metadata).await?;
            if both {
                println!("{}\n{}", tokens.id_token, tokens.access_token);
            } else if access {
                println!("{}", tokens.access_token);
            } else {
                println!("{}", tokens.id_token);
            }
        }
        UserCommand::Delete { email } => {
            cognito::delete(&pool, &email).await?;
            eprintln!("==> deleted {email}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn key_value(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{arg:?} is not KEY=VALUE"))
}
