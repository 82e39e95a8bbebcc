output "user_pool_id" {
  description = "Cognito user pool id."
  value       = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  description = "Cognito user pool ARN."
  value       = aws_cognito_user_pool.this.arn
}

output "app_client_id" {
  description = "App client id (public client, no secret)."
  value       = aws_cognito_user_pool_client.app.id
}

output "wired_triggers" {
  description = "Trigger function ARNs wired into the pool (empty in the first pass)."
  value       = local.trigger_arns
}
