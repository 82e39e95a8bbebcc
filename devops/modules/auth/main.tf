# The auth infrastructure, deployable alone (terraform apply -target=module.auth):
# the Cognito user pool with email sign-in, the apps' public client, and (second pass)
# the Lambda triggers whose ARNs the post-deploy sync copied from the SAM stack to SSM.
# (The invoke permissions for this pool live with the functions, in template.yaml.)

data "aws_ssm_parameter" "trigger" {
  for_each = var.wire_triggers ? var.trigger_parameter_names : {}
  name     = each.value
}

locals {
  trigger_arns = { for k, p in data.aws_ssm_parameter.trigger : k => p.insecure_value }
}

resource "aws_cognito_user_pool" "this" {
  name                     = var.name
  user_pool_tier           = var.user_pool_tier
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  mfa_configuration        = "OFF"

  username_configuration {
    case_sensitive = false
  }

  password_policy {
    minimum_length                   = var.password_minimum_length
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 7
  }

  # A changed email takes effect only once the user confirms the code sent to the new
  # address: until then Cognito keeps the old, verified one (sign-in, recovery, the
  # email claim), so a stolen session cannot move the account to an unverified address.
  user_attribute_update_settings {
    attributes_require_verification_before_update = ["email"]
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  admin_create_user_config {
    allow_admin_create_user_only = false
  }

  dynamic "user_pool_add_ons" {
    for_each = var.advanced_security_mode == "OFF" ? [] : [var.advanced_security_mode]
    content {
      advanced_security_mode = user_pool_add_ons.value
    }
  }

  dynamic "lambda_config" {
    for_each = var.wire_triggers ? [local.trigger_arns] : []
    content {
      pre_sign_up       = lambda_config.value["PreSignUpFunctionArn"]
      post_confirmation = lambda_config.value["PostConfirmationFunctionArn"]
      pre_token_generation_config {
        lambda_arn     = lambda_config.value["PreTokenGenerationFunctionArn"]
        lambda_version = "V2_0"
      }
    }
  }
}

resource "aws_cognito_user_pool_client" "app" {
  name         = "${var.name}-app"
  user_pool_id = aws_cognito_user_pool.this.id

  generate_secret = false
  # ADMIN_USER_PASSWORD_AUTH needs IAM credentials (cognito-idp:AdminInitiateAuth), so it
  # opens nothing to the public client: the deploy's smoke test signs in with it.
  explicit_auth_flows = concat(
    ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"],
    var.allow_password_auth ? ["ALLOW_USER_PASSWORD_AUTH"] : [],
  )
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  access_token_validity  = var.token_validity.access_minutes
  id_token_validity      = var.token_validity.id_minutes
  refresh_token_validity = var.token_validity.refresh_days
  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}
