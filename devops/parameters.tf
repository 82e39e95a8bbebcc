# Every shared runtime parameter template.yaml reads, written under /encache/{env}/.
# The names and types come only from contracts/ssm-parameters.json; this file maps each
# one to its value. A name added there without a value here fails at plan time.

locals {
  shared_parameters = local.contract.written_by_terraform

  plain_parameters  = { for k, p in local.shared_parameters : k => p if p.type != "SecureString" }
  secure_parameters = { for k, p in local.shared_parameters : k => p if p.type == "SecureString" }

  # Values devops/ computes (source "terraform"), keyed like the contract.
  computed_values = {
    "db/host"                            = local.db_host
    "db/port"                            = tostring(local.db_port)
    "db/name"                            = local.db_name
    "db/username"                        = local.db_username
    "db/app-username"                    = var.db_app_username
    "network/subnet-ids"                 = join(",", local.subnet_ids)
    "network/function-security-group-id" = aws_security_group.function.id
    "auth/user-pool-id"                  = module.auth.user_pool_id
    "auth/app-client-id"                 = module.auth.app_client_id
    "kms/data-key-arn"                   = aws_kms_key.data.arn
  }

  plain_values = {
    for k, p in local.plain_parameters : k => (
      p.source == "operator" ? lookup(var.operator_parameters, k, null) : lookup(local.computed_values, k, null)
    )
  }

  generated_secret_keys = toset([for k, p in local.secure_parameters : k if p.source == "generated"])
}

# Random secrets (e.g. signing keys), for this run only; sent write-only.
ephemeral "aws_secretsmanager_random_password" "generated" {
  for_each = local.generated_secret_keys

  password_length     = 64
  exclude_punctuation = true
}

locals {
  # Ephemeral: usable only in write-only arguments.
  secure_values = merge(
    { for k in local.generated_secret_keys : k => ephemeral.aws_secretsmanager_random_password.generated[k].random_password },
    { for k, p in local.secure_parameters : k => lookup(var.operator_secrets, k, null) if p.source == "operator-secret" },
    { for k, p in local.secure_parameters : k => local.db_password if p.source == "db-password" },
  )
}

resource "aws_ssm_parameter" "plain" {
  #checkov:skip=CKV2_AWS_34:only non-secret settings (host names, ids) are plain; every secret is in aws_ssm_parameter.secure
  for_each = local.plain_parameters

  name        = "${local.param_prefix}${each.key}"
  description = each.value.description
  type        = each.value.type
  value       = local.plain_values[each.key]

  lifecycle {
    precondition {
      condition     = local.plain_values[each.key] != null && local.plain_values[each.key] != ""
      error_message = "No value for shared parameter ${each.key} (source ${each.value.source}): set operator_parameters[\"${each.key}\"] or map it in devops/parameters.tf."
    }
  }
}

resource "aws_ssm_parameter" "secure" {
  for_each = local.secure_parameters

  name        = "${local.param_prefix}${each.key}"
  description = each.value.description
  type        = "SecureString"
  # The environment's data key (devops/kms.tf): a reader needs kms:Decrypt on it through
  # SSM as well as ssm:GetParameter. Moving an existing parameter to it rewrites its value
  # (a write-only value is sent with every update): apply that with a secrets_version bump
  # (docs/operations.md#database-encryption-key).
  key_id           = aws_kms_key.data.arn
  value_wo         = local.secure_values[each.key]
  value_wo_version = var.secrets_version

  lifecycle {
    precondition {
      condition     = local.secure_values[each.key] != null
      error_message = "No value for secret ${each.key} (source ${each.value.source}): write-only secrets are needed on every apply; export TF_VAR_operator_secrets (or TF_VAR_db_password for an existing database)."
    }
  }
}
