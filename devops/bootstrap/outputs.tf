output "state_bucket" {
  description = "The Terraform state bucket (devops/ keeps encache/ENV/terraform.tfstate in it)."
  value       = aws_s3_bucket.state.id
}

output "state_kms_key_arn" {
  description = "The key the state and its lock files are encrypted with."
  value       = aws_kms_key.state.arn
}

output "state_keys" {
  description = "Each environment's state object key (scripts/deploy.sh ENV passes -backend-config=key=...)."
  value       = { for e in var.environments : e => local.state_keys[e] }
}

output "github_oidc_provider_arn" {
  description = "The account's GitHub Actions OIDC provider."
  value       = local.oidc_provider_arn
}

output "deploy_role_arns" {
  description = "Per environment: the role the deploy workflow assumes (GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = { for e, name in local.deploy_role_names : e => aws_iam_role.github[name].arn }
}

output "plan_role_arn" {
  description = "The read-only plan role for pull requests (repository variable AWS_PLAN_ROLE_ARN)."
  value       = aws_iam_role.github[local.plan_role_name].arn
}

output "backend_config" {
  description = "Paste into devops/backend.s3.hcl (git-ignored); scripts/deploy.sh adds key=encache/ENV/terraform.tfstate."
  value       = <<-EOT
    # devops/backend.s3.hcl, from devops/bootstrap's backend_config output.
    bucket       = "${aws_s3_bucket.state.id}"
    region       = "${local.region}"
    encrypt      = true
    kms_key_id   = "${aws_kms_key.state.arn}"
    use_lockfile = true
  EOT
}
