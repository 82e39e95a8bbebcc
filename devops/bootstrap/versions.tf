terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Local state on purpose: this module creates the state bucket everything else uses,
  # and is applied once per account by hand. Its terraform.tfstate (git-ignored) holds no
  # secret, only ids and ARNs; keep it with the account's admin records. Lost, every
  # resource here can be imported again (README.md beside this file).
}
