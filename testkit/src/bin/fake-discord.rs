//! The tests' fake Discord as a standalone server, for `encache-local invoke`:
//!
//! ```sh
//! cargo run -p encache-testkit --bin fake-discord
//! # store the printed URL as the webhook SecureString in the emulator, then
//! encache-local invoke CostAlertFunction -e events/cost-alert-budget-sns.json
//! ```
//!
//! It enforces the same contract as in the tests (limits, 5 requests / 2 s, 404) and
//! prints every message it accepts or rejects.

use std::time::Duration;

use encache_testkit::fake_discord::FakeDiscord;

#[tokio::main]
async fn main() {
    let discord = FakeDiscord::start().await;
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
