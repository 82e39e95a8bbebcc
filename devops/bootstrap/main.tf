# encache's per-account bootstrap, applied once by hand with administrator credentials
# (README.md beside this file): the Terraform state bucket devops/ stores its state in
# (one key per environment, S3-native lock file), and the GitHub OIDC provider and roles
# the deploy workflow assumes. Nothing else in the repository applies it, except the
# emulator checks (scripts/check-infra.sh emulator, scripts/deploy.sh rehearsal).

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project   = "encache"
      Component = "bootstrap"
      ManagedBy = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = var.aws_region

  state_bucket = coalesce(var.state_bucket_name, "encache-tfstate-${local.account}-${local.region}")
  # scripts/deploy.sh ENV initialises devops/ with -backend-config=key=<this>.
  state_keys = { for e in toset(concat(var.environments, [var.plan_environment])) : e => "encache/${e}/terraform.tfstate" }

  # The SSM parameter prefix devops/ writes under, from the one contract devops/ uses.
  contract     = jsondecode(file("${path.module}/../../contracts/ssm-parameters.json"))
  param_prefix = { for e in toset(concat(var.environments, [var.plan_environment])) : e => replace(local.contract.parameter_prefix, "{env}", e) }

  github_oidc_host = "token.actions.githubusercontent.com"
  github_audience  = "sts.amazonaws.com"
}
