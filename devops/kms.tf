# ================================================================== data key
# One customer-managed key per environment (alias/encache-ENV-data) for everything of
# encache that holds data at rest: the SecureString parameters, the database's storage
# (new instances; see aws_db_instance.main), the VPC flow logs here, and in template.yaml
# (DataKeyArn, read from /encache/ENV/kms/data-key-arn) the upload bucket, the dead-letter
# queues, the SNS topics, the log groups and the idempotency table.
#
# Why a key of our own rather than the AWS-managed ones: its policy is ours, so the
# Budgets, Cost Anomaly Detection and CloudWatch alarm publishers can be let in (the
# AWS-managed SNS key admits none of them), every use is a CloudTrail event naming it,
# access can be cut for the whole environment at once, and it rotates yearly.

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  # The log groups of this environment that may be encrypted with the key: the stack's
  # (/aws/lambda/encache-ENV-functions, /aws/apigateway/encache-ENV-http-api) and the
  # flow logs'. CloudWatch Logs names the log group in the encryption context.
  data_key_log_groups = [
    "arn:${local.partition}:logs:${var.aws_region}:${local.account}:log-group:/aws/lambda/${local.name}-*",
    "arn:${local.partition}:logs:${var.aws_region}:${local.account}:log-group:/aws/apigateway/${local.name}-*",
    "arn:${local.partition}:logs:${var.aws_region}:${local.account}:log-group:/aws/vpc/${local.name}-flow-logs",
  ]
}

resource "aws_kms_key" "data" {
  description             = "encache ${var.env} data at rest (SSM SecureStrings, database, uploads, queues, topics, logs, tables)"
  enable_key_rotation     = true
  deletion_window_in_days = var.data_key_deletion_window_days
  policy                  = data.aws_iam_policy_document.data_key.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

data "aws_iam_policy_document" "data_key" {
  #checkov:skip=CKV_AWS_111:a key policy's Resource "*" is this key only; the first statement delegates to the account's IAM policies, which name the key (template.yaml's function policies, the deploy roles)
  #checkov:skip=CKV_AWS_356:a key policy's Resource "*" is this key only (a key policy cannot name another resource)
  #checkov:skip=CKV_AWS_109:the account root principal administers its own key (the default key policy, its actions listed); without it the key would be unmanageable

  # The stack's function roles have names Terraform does not know: they get the key
  # through their own IAM policies (template.yaml: kms:Decrypt / kms:GenerateDataKey on
  # this key only, through one service each). Listed actions, no kms:*.
  statement {
    sid    = "KeyPolicyResourceIsThisKeyDelegateToIam"
    effect = "Allow"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:CreateGrant",
      "kms:Decrypt",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:DisableKeyRotation",
      "kms:EnableKey",
      "kms:EnableKeyRotation",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListGrants",
      "kms:ListKeyPolicies",
      "kms:ListKeyRotations",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:RetireGrant",
      "kms:RevokeGrant",
      "kms:RotateKeyOnDemand",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"]
  }

  # CloudWatch Logs encrypts this environment's log groups only (the encryption context
  # names the log group).
  statement {
    sid    = "CloudWatchLogsForThisEnvironmentsLogGroups"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = ["*"]
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = local.data_key_log_groups
    }
  }

  # The services that publish to the encrypted topics (template.yaml): AWS Budgets and
  # Cost Anomaly Detection to the cost-alert topic, CloudWatch alarms (the stack's and
  # the database's) to the alarm topic. Each for this account only. Publishing needs
  # a data key (GenerateDataKey*) and its decryption (Decrypt).
  statement {
    sid    = "BudgetsPublishToEncryptedTopics"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["budgets.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:budgets::${local.account}:*"]
    }
  }

  statement {
    sid    = "CostAnomalyDetectionPublishToEncryptedTopics"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["costalerts.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  statement {
    sid    = "CloudWatchAlarmsPublishToEncryptedTopics"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account}:alarm:*"]
    }
  }
}

# ------------------------------------------------------------------ the database's key
# The storage key of an RDS instance cannot change in place: a new kms_key_id replaces
# the instance (a new, empty database). So aws_db_instance.main takes the data key when
# it is created and ignores kms_key_id afterwards: an instance created before the data
# key existed keeps the AWS-managed aws/rds key, and this check says so on every plan and
# apply until it is moved by the snapshot-copy migration of
# docs/operations.md#database-encryption-key.
check "database_on_the_data_key" {
  assert {
    condition     = !local.create_db || one(aws_db_instance.main[*].kms_key_id) == null || one(aws_db_instance.main[*].kms_key_id) == aws_kms_key.data.arn
    error_message = "The database ${local.name} is encrypted with ${coalesce(one(aws_db_instance.main[*].kms_key_id), "?")}, not the environment's data key ${aws_kms_key.data.arn}. Terraform keeps its key (a new one would replace the instance); move it with the snapshot-copy migration in docs/operations.md#database-encryption-key."
  }
}
