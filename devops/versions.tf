terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Remote state, one key per environment (partial configuration): scripts/deploy.sh ENV
  # runs init -reconfigure -backend-config=backend.s3.hcl (devops/bootstrap's
  # backend_config output: bucket, region, KMS key, use_lockfile) and
  # -backend-config=key=encache/ENV/terraform.tfstate. Checks that only validate use
  # init -backend=false; the emulator checks point it at an emulated state bucket.
  backend "s3" {}
}
