//! `encache-local user create|token|delete`: local Cognito users, signed up and signed in
//! through the stack's trigger functions as Cognito runs them.

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
    /// Print an ID token for the user that the local HTTP API accepts.
    Token {
        email: String,
        #[arg(long)]
        password: String,
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
        UserCommand::Token { email, password } => {
            println!(
                "{}",
                cognito::token_checked(stack, &pool, &email, &password).await?
            );
        }
        UserCommand::Delete { email } => {
            cognito::delete(&pool, &email).await?;
            eprintln!("==> deleted {email}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
