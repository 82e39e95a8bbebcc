# ================================================================== Terraform state
# One versioned, KMS-encrypted bucket per account; devops/ keeps one state object per
# environment in it (encache/ENV/terraform.tfstate) and locks it with Terraform's
# S3-native lock file beside it (use_lockfile, no DynamoDB table).
#
# A key of its own (not the aws/s3 default key): its key policy is ours, so reading a
# state needs kms:Decrypt on this key as well as s3:GetObject (a role with S3 read on the
# bucket alone learns nothing), every use is a CloudTrail event naming the key, access can
# be revoked without touching the bucket, and it rotates yearly. About $1 a month.

resource "aws_kms_key" "state" {
  description             = "encache Terraform state (s3://${local.state_bucket})"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.state_key.json
}

resource "aws_kms_alias" "state" {
  name          = "alias/encache-terraform-state"
  target_key_id = aws_kms_key.state.key_id
}

# The account's IAM policies decide who may use the key (the roles below name it); the
# key policy only delegates to them. Listed actions, no kms:*.
data "aws_iam_policy_document" "state_key" {
  #checkov:skip=CKV_AWS_111:a key policy's Resource "*" is this key only; the statement delegates to the account's IAM policies, which name the key
  #checkov:skip=CKV_AWS_356:a key policy's Resource "*" is this key only (a key policy cannot name another resource)
  #checkov:skip=CKV_AWS_109:the account root principal administers its own key (the default key policy, its actions listed); without it the key would be unmanageable
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
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:access logs would need a second bucket; CloudTrail (management and, if enabled, data events) records who read or wrote state
  #checkov:skip=CKV_AWS_144:cross-region replication doubles cost for a bucket whose every object is versioned and rebuildable from the resources themselves
  #checkov:skip=CKV2_AWS_62:nothing consumes state-change events; the lock file is the coordination mechanism
  bucket        = local.state_bucket
  force_destroy = var.state_bucket_force_destroy
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  count = var.enable_state_lifecycle ? 1 : 0

  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-noncurrent-state-versions"
    status = "Enabled"
    # Every object (an empty prefix: what S3 stores and returns for "no filter").
    filter {
      prefix = ""
    }
    noncurrent_version_expiration {
      noncurrent_days = var.state_noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

# A Deny, so the one wildcard action in this module: it must cover every S3 action.
data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}
