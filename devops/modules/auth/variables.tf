variable "name" {
  description = "Name of the user pool and prefix of the app client (e.g. encache-dev)."
  type        = string
}

variable "user_pool_tier" {
  description = "Cognito feature plan; pre-token-generation V2_0 needs ESSENTIALS or PLUS, threat protection (advanced_security_mode) PLUS (null: the account default)."
  type        = string
  default     = "PLUS"
  nullable    = true
  validation {
    condition     = contains(["LITE", "ESSENTIALS", "PLUS"], coalesce(var.user_pool_tier, "LITE"))
    error_message = "user_pool_tier must be LITE, ESSENTIALS or PLUS."
  }
}

variable "advanced_security_mode" {
  description = "Threat protection: OFF, AUDIT or ENFORCED (AUDIT/ENFORCED need the PLUS tier)."
  type        = string
  default     = "AUDIT"
  validation {
    condition     = contains(["OFF", "AUDIT", "ENFORCED"], var.advanced_security_mode)
    error_message = "advanced_security_mode must be OFF, AUDIT or ENFORCED."
  }
  validation {
    condition     = var.advanced_security_mode == "OFF" || coalesce(var.user_pool_tier, "PLUS") == "PLUS"
    error_message = "advanced_security_mode AUDIT or ENFORCED needs user_pool_tier PLUS."
  }
}

variable "password_minimum_length" {
  description = "Minimum password length."
  type        = number
  default     = 12
}

variable "allow_password_auth" {
  description = "Also allow USER_PASSWORD_AUTH besides SRP."
  type        = bool
  default     = false
}

variable "token_validity" {
  description = "Access and id token lifetimes in minutes, refresh tokens in days."
  type = object({
    access_minutes = number
    id_minutes     = number
    refresh_days   = number
  })
}

variable "deletion_protection" {
  description = "Refuse to delete the user pool."
  type        = bool
  default     = true
}

variable "wire_triggers" {
  description = "Wire the Lambda triggers (second pass, after the post-deploy sync wrote their ARNs)."
  type        = bool
  default     = false
}

variable "trigger_parameter_names" {
  description = "SSM parameter holding each trigger function's ARN, keyed by stack output (PreSignUpFunctionArn, PostConfirmationFunctionArn, PreTokenGenerationFunctionArn)."
  type        = map(string)
  validation {
    condition = alltrue([for k in ["PreSignUpFunctionArn", "PostConfirmationFunctionArn", "PreTokenGenerationFunctionArn"] :
    contains(keys(var.trigger_parameter_names), k)])
    error_message = "trigger_parameter_names needs PreSignUpFunctionArn, PostConfirmationFunctionArn and PreTokenGenerationFunctionArn."
  }
}
