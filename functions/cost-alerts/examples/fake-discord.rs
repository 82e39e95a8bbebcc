//! The tests' fake Discord as a standalone server, for `encache-local invoke`:
//!
//! ```sh
//! cargo run -p encache-cost-alerts --example fake-discord
//! # store the printed URL as the webhook SecureString in the emulator, then
//! encache-local invoke CostAlertFunction -e events/cost-alert-budget-sns.json
//! ```
//!
//! It enforces the same contract as in the tests (limits, 5 requests / 2 s, 404) and
//! prints every message it accepts or rejects.

#[path = "../tests/support/fake_discord.rs"]
#[allow(dead_code)]
mod fake_discord;

use std::time::Duration;

#[tokio::main]
async fn main() {
    let discord = fake_discord::FakeDiscord::start().await;
    println!("webhook URL: {}", discord.new_webhook());
    let (mut accepted, mut rejected) = (0, 0);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
        for m in discord.accepted().iter().skip(accepted) {
            println!(
                "accepted:\n{}",
                serde_json::to_string_pretty(m).unwrap_or_default()
            );
            accepted += 1;
        }
        for (status, m) in discord.rejected().iter().skip(rejected) {
            println!("rejected ({status}):\n{m}");
            rejected += 1;
        }
    }
}
