variable "aws_region" {
  description = "Region of the state bucket and of the deployments the roles may make."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region name such as us-east-1."
  }
}

variable "github_repository" {
  description = "The GitHub repository (\"owner/name\") whose workflows may assume the roles; pinned in every trust policy's sub claim."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be \"owner/name\" (no wildcard, no spaces), e.g. \"my-org/encache\"."
  }
}

variable "environments" {
  description = "Environments that get a deploy role (encache-github-deploy-ENV) and a state key (encache/ENV/terraform.tfstate)."
  type        = list(string)
  default     = ["dev", "stage", "prod"]

  validation {
    condition     = length(var.environments) > 0 && alltrue([for e in var.environments : can(regex("^[a-z][a-z0-9]{1,15}$", e))])
    error_message = "environments: lower-case names such as dev, stage and prod."
  }
}

variable "api_domains" {
  description = "Per environment whose stack sets ApiDomainName/ApiHostedZoneId (samconfig.toml): the domain and its Route 53 public hosted zone. Its deploy role gets exactly what CloudFormation needs for the certificate, the API domain and their records (api_domain.tf); environments not listed get none of it."
  type = map(object({
    domain_name    = string
    hosted_zone_id = string
  }))
  default = {}

  validation {
    condition     = alltrue([for e in keys(var.api_domains) : contains(var.environments, e)])
    error_message = "api_domains: every key must be one of environments."
  }
  validation {
    condition     = alltrue([for d in values(var.api_domains) : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", d.domain_name)) && can(regex("^Z[A-Z0-9]{1,31}$", d.hosted_zone_id))])
    error_message = "api_domains: domain_name a lower-case DNS name such as api.example.com (no wildcard), hosted_zone_id a Route 53 zone id such as Z0123456789ABCDEFGHIJ."
  }
}

variable "plan_environment" {
  description = "The environment pull requests plan against (encache-github-plan-ENV, read-only)."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,15}$", var.plan_environment))
    error_message = "plan_environment: a lower-case environment name such as dev."
  }
}

variable "state_bucket_name" {
  description = "Name of the Terraform state bucket (null: encache-tfstate-ACCOUNT-REGION)."
  type        = string
  default     = null

  validation {
    condition     = var.state_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be a valid S3 bucket name."
  }
}

variable "state_noncurrent_version_days" {
  description = "Days a replaced (noncurrent) state version is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.state_noncurrent_version_days >= 7
    error_message = "Keep noncurrent state versions at least 7 days."
  }
}

variable "enable_state_lifecycle" {
  description = "Expire noncurrent state versions (the lifecycle rule). false only for the deploy rehearsal: the AWS provider waits about a minute for S3 lifecycle rules to settle, and scripts/check-infra.sh emulator applies the rule on every test run."
  type        = bool
  default     = true
}

variable "ecr_repository_name" {
  description = "The devops/ ECR repository the deploy roles manage (devops/ var.ecr_repository_name; one per account, shared by the environments)."
  type        = string
  default     = "encache-base-ml"
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false: the account already has one for token.actions.githubusercontent.com; it is looked up)."
  type        = bool
  default     = true
}

variable "state_bucket_force_destroy" {
  description = "Let destroy delete the state bucket with every state version in it. Emulator checks only: never for a real account."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
