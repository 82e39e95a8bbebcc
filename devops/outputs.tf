# Operator outputs. Never a password or any other secret: those live only in SSM
# SecureStrings (see shared_parameter_names).

output "vpc_id" {
  description = "The default VPC the functions, database and bastion run in."
  value       = data.aws_vpc.default.id
}

output "subnet_ids" {
  description = "Subnets of the VPC functions (also /encache/{env}/network/subnet-ids)."
  value       = local.subnet_ids
}

output "function_security_group_id" {
  description = "Security group of the VPC functions."
  value       = aws_security_group.function.id
}

output "database_security_group_id" {
  description = "Security group of the database (5432 from the function and bastion groups only)."
  value       = aws_security_group.database.id
}

output "db_host" {
  description = "PostgreSQL host."
  value       = local.db_host
}

output "db_port" {
  description = "PostgreSQL port."
  value       = local.db_port
}

output "bastion_instance_id" {
  description = "Bastion instance for `aws ssm start-session --target <id>` (null when disabled)."
  value       = one(aws_instance.bastion[*].id)
}

output "bastion_port_forward_command" {
  description = "Forward localhost:5432 to the database through the bastion."
  value = var.enable_bastion ? join(" ", [
    "aws ssm start-session --target ${aws_instance.bastion[0].id}",
    "--document-name AWS-StartPortForwardingSessionToRemoteHost",
    "--parameters host=${coalesce(local.db_host, "DB_HOST")},portNumber=${local.db_port},localPortNumber=5432",
  ]) : null
}

output "ecr_repository_url" {
  description = "URL of the encache-base-ml image repository."
  value       = aws_ecr_repository.base_ml.repository_url
}

output "data_key_arn" {
  description = "The environment's customer-managed data key (alias/encache-ENV-data; also /encache/{env}/kms/data-key-arn)."
  value       = aws_kms_key.data.arn
}

output "user_pool_id" {
  description = "Cognito user pool id."
  value       = module.auth.user_pool_id
}

output "app_client_id" {
  description = "Cognito app client id."
  value       = module.auth.app_client_id
}

output "auth_triggers_wired" {
  description = "Whether this apply wired the Cognito triggers (second pass)."
  value       = var.wire_auth_triggers
}

output "shared_parameter_names" {
  description = "Every SSM parameter written for template.yaml (names only)."
  value = sort(concat(
    [for p in aws_ssm_parameter.plain : p.name],
    [for p in aws_ssm_parameter.secure : p.name],
  ))
}
