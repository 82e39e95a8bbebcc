# ================================================================== GitHub OIDC + roles
# The deploy workflow assumes these with the repository's OIDC token; no long-lived AWS
# key exists anywhere. Each role trusts exactly one sub claim (StringEquals, never
# StringLike): a GitHub environment (dev, prod: its protection rules gate the deploy) or
# pull requests (read-only plan). The names and claims are the workflow's contract.
# scripts/check-bootstrap.py asserts all of this on every emulator check.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc_host}"
  client_id_list = [local.github_audience]
  # No thumbprint: IAM validates GitHub's certificate against its own trusted CAs.
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 0 : 1
  url   = "https://${local.github_oidc_host}"
}

locals {
  oidc_provider_arn = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn

  deploy_role_names = { for e in var.environments : e => "encache-github-deploy-${e}" }
  plan_role_name    = "encache-github-plan-${var.plan_environment}"

  # Role name -> the one sub claim it trusts.
  role_subjects = merge(
    { for e, name in local.deploy_role_names : name => "repo:${var.github_repository}:environment:${e}" },
    { (local.plan_role_name) = "repo:${var.github_repository}:pull_request" },
  )
}

data "aws_iam_policy_document" "trust" {
  for_each = local.role_subjects

  statement {
    sid     = "GitHubActionsOidc"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:aud"
      values   = [local.github_audience]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:sub"
      values   = [each.value]
    }
  }
}

resource "aws_iam_role" "github" {
  for_each = local.role_subjects

  name                 = each.key
  description          = "GitHub Actions (${each.value}) for encache: ${each.key == local.plan_role_name ? "read-only terraform plan" : "scripts/deploy.sh"}"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = 3600

  lifecycle {
    precondition {
      condition     = contains(var.environments, var.plan_environment)
      error_message = "plan_environment must be one of environments (its state key is read)."
    }
  }
}

# Each deploy role's permissions, in managed policies of at most 6,144 characters each
# (IAM's limit), one per part of scripts/deploy.sh (policies.tf).
locals {
  deploy_documents = {
    state-network = data.aws_iam_policy_document.deploy_state_network
    data-auth     = data.aws_iam_policy_document.deploy_data_auth
    stack         = data.aws_iam_policy_document.deploy_stack
    functions     = data.aws_iam_policy_document.deploy_functions
  }
  deploy_policies = {
    for pair in setproduct(var.environments, keys(local.deploy_documents)) :
    "${pair[0]}-${pair[1]}" => { env = pair[0], part = pair[1] }
  }
}

resource "aws_iam_policy" "deploy" {
  for_each = local.deploy_policies

  name        = "${local.deploy_role_names[each.value.env]}-${each.value.part}"
  description = "scripts/deploy.sh ${each.value.env}: ${each.value.part}"
  policy      = local.deploy_documents[each.value.part][each.value.env].json
}

resource "aws_iam_role_policy_attachment" "deploy" {
  for_each = local.deploy_policies

  role       = aws_iam_role.github[local.deploy_role_names[each.value.env]].name
  policy_arn = aws_iam_policy.deploy[each.key].arn
}

resource "aws_iam_policy" "plan" {
  name        = "${local.plan_role_name}-read"
  description = "terraform plan of devops/ for ${var.plan_environment}: read-only, plus its state lock file"
  policy      = data.aws_iam_policy_document.plan.json
}

resource "aws_iam_role_policy_attachment" "plan" {
  role       = aws_iam_role.github[local.plan_role_name].name
  policy_arn = aws_iam_policy.plan.arn
}
