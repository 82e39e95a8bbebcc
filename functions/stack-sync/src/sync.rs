//! One sync of one stack: read, plan, apply (unless dry run), report.

use std::fmt;

use serde::Serialize;

use crate::contract::Contract;
use crate::plan::{self, Action, Change};
use crate::store::{self, Clients};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    /// Plan only: nothing is written.
    DryRun,
}

/// How one planned change went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "error")]
pub enum Status {
    /// Dry run: would have been written.
    Planned,
    /// Written (or deleted).
    Done,
    /// The write failed after the SDK's retries; the message says why.
    Failed(String),
    /// Nothing to write (unchanged, invalid or in conflict).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub change: Change,
    #[serde(flatten)]
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub stack: String,
    pub prefix: String,
    pub dry_run: bool,
    pub entries: Vec<Entry>,
    /// Outputs Terraform reads (the contract) that the stack does not export.
    pub missing_contract_outputs: Vec<String>,
}

impl Report {
    pub fn count(&self, action: Action) -> usize {
        self.entries
            .iter()
            .filter(|e| e.change.action == action)
            .count()
    }

    /// SSM writes that succeeded (PutParameter / DeleteParameter calls).
    pub fn writes(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.status == Status::Done)
            .count()
    }

    pub fn entry(&self, output_key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.change.output_key == output_key)
    }

    /// Outputs that cannot be synced until the template changes (invalid or in conflict).
    pub fn rejected(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.change.action, Action::Invalid | Action::Conflict))
    }

    /// Writes that failed; running the sync again may fix them.
    pub fn failed(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.status, Status::Failed(_)))
    }

    pub fn is_clean(&self) -> bool {
        self.rejected().next().is_none() && self.failed().next().is_none()
    }

    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Action::ALL
            .iter()
            .map(|a| format!("{} {}", self.count(*a), a.as_str()))
            .collect();
        parts.push(format!("{} failed", self.failed().count()));
        parts.join(", ")
    }
}

/// The plan as the CLI prints it: one line per parameter, then a summary.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        writeln!(f, "stack {} -> {}{mode}", self.stack, self.prefix)?;
        for e in &self.entries {
            write!(
                f,
                "  {:<10} {}",
                e.change.action.as_str(),
                e.change.parameter
            )?;
            if let Some(reason) = &e.change.reason {
                write!(f, ": {reason}")?;
            }
            if let Status::Failed(err) = &e.status {
                write!(f, " FAILED: {err}")?;
            }
            writeln!(f)?;
        }
        for key in &self.missing_contract_outputs {
            writeln!(
                f,
                "  warning: the stack has no output {key}, which Terraform reads (contracts/stack-outputs.json)"
            )?;
        }
        write!(f, "summary: {}", self.summary())
    }
}

/// Mirrors `stack`'s outputs into SSM under the contract prefix for `env`.
///
/// Reading the stack or the existing parameters failing is an `Err` (nothing was
/// written). Per-parameter problems are in the report: invalid outputs are skipped and
/// the rest synced; a failed write does not stop the others.
pub async fn sync_stack(
    clients: &Clients,
    contract: &Contract,
    stack: &str,
    env: &str,
    mode: Mode,
) -> anyhow::Result<Report> {
    let prefix = contract.prefix_for(env);
    let outputs = store::stack_outputs(clients, stack).await?;
    let existing = store::existing_parameters(clients, &prefix, stack).await?;
    let plan = plan::compute(&prefix, &outputs, &existing);

    let mut entries = Vec::with_capacity(plan.changes.len());
    for change in plan.changes {
        let status = match (mode, change.action.writes()) {
            (_, false) => Status::Skipped,
            (Mode::DryRun, true) => Status::Planned,
            (Mode::Apply, true) => match apply(clients, &change, stack).await {
                Ok(()) => Status::Done,
                Err(e) => Status::Failed(format!("{e:#}")),
            },
        };
        match &status {
            Status::Failed(error) => tracing::error!(
                parameter = %change.parameter, action = change.action.as_str(), %error,
                "stack output not synced"
            ),
            _ if change.action == Action::Invalid || change.action == Action::Conflict => {
                tracing::error!(
                    parameter = %change.parameter, action = change.action.as_str(),
                    reason = change.reason.as_deref().unwrap_or_default(),
                    "stack output rejected"
                )
            }
            _ => tracing::info!(
                parameter = %change.parameter, action = change.action.as_str(), ?status,
                "stack output"
            ),
        }
        entries.push(Entry { change, status });
    }

    let missing_contract_outputs: Vec<String> = contract
        .outputs
        .iter()
        .filter(|key| !outputs.iter().any(|o| &o.key == *key))
        .cloned()
        .collect();
    if !missing_contract_outputs.is_empty() {
        tracing::warn!(stack, missing = ?missing_contract_outputs, "stack lacks outputs that Terraform reads");
    }
    Ok(Report {
        stack: stack.to_owned(),
        prefix,
        dry_run: mode == Mode::DryRun,
        entries,
        missing_contract_outputs,
    })
}

async fn apply(clients: &Clients, change: &Change, stack: &str) -> anyhow::Result<()> {
    let value = change.value.as_deref().unwrap_or_default();
    match change.action {
        Action::Create => store::create(clients, &change.parameter, value, stack).await,
        Action::Update => store::update(clients, &change.parameter, value).await,
        Action::Delete => store::delete(clients, &change.parameter).await,
        Action::Unchanged | Action::Invalid | Action::Conflict => Ok(()),
    }
}
