//! The parameter contract with Terraform, kept in one file both sides read:
//! `contracts/stack-outputs.json` (the outputs Terraform consumes and the prefix they
//! land under). Compiled in, so the function and the file can never disagree.

use anyhow::Context;
use serde::Deserialize;

/// The contract file's text, as it was when this binary was built.
pub const CONTRACT_JSON: &str = include_str!("../../../contracts/stack-outputs.json");

/// Where the contract's `{env}` placeholder goes.
const ENV_PLACEHOLDER: &str = "{env}";

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Contract {
    /// `/encache/{env}/stack/`: each output lands at this prefix + its OutputKey.
    pub parameter_prefix: String,
    /// The outputs Terraform reads; the template must export every one of them.
    pub outputs: Vec<String>,
}

impl Contract {
    pub fn load() -> anyhow::Result<Self> {
        let contract: Contract =
            serde_json::from_str(CONTRACT_JSON).context("parsing contracts/stack-outputs.json")?;
        anyhow::ensure!(
            contract.parameter_prefix.starts_with('/')
                && contract.parameter_prefix.ends_with('/')
                && contract.parameter_prefix.contains(ENV_PLACEHOLDER),
            "contracts/stack-outputs.json: parameter_prefix {:?} must start and end with '/' and contain {ENV_PLACEHOLDER}",
            contract.parameter_prefix
        );
        Ok(contract)
    }

    /// The prefix for one environment, e.g. `/encache/dev/stack/`.
    pub fn prefix_for(&self, env: &str) -> String {
        self.parameter_prefix.replace(ENV_PLACEHOLDER, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_parses_and_puts_dev_outputs_under_encache_dev_stack() {
        let contract = Contract::load().unwrap();
        assert_eq!(contract.prefix_for("dev"), "/encache/dev/stack/");
        assert!(contract.outputs.iter().any(|o| o == "ApiUrl"));
    }
}
