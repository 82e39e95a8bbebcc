# ================================================================== role permissions
# What scripts/deploy.sh ENV does, and nothing else (scripts/check-bootstrap.py asserts the
# rules): listed actions only (no wildcard action), resources named by the environment's
# prefix (encache-ENV, /encache/ENV/, stack encache-ENV, state key encache/ENV/) wherever
# the service has resource-level permissions. A statement on Resource "*" is one the
# service offers no resource for; its sid says so and is allow-listed, with its actions,
# in scripts/check-bootstrap.py.
#
#   deploy_state_network  steps 2 and 7 (terraform apply of devops/): its state and
#                         lock file, the network, the bastion, AWS-managed keys
#   deploy_data_auth      steps 1-3, 6-8: the database, ECR, every /encache/ENV/ SSM
#                         parameter (terraform, the preflight, the post-deploy sync),
#                         the Cognito pool (module auth and the smoke test's admin calls)
#   deploy_stack          step 5, sam deploy: CloudFormation, its artifact bucket, the
#                         stack's S3/SNS/SQS/EventBridge/logs/alarms/dashboard/budget/API
#   deploy_functions      step 5: Lambda, the functions' IAM roles, CodeDeploy
#   plan                  terraform plan of devops/ for the plan environment, read-only

locals {
  # What Terraform reads of devops/'s network and bastion: a deploy and a plan alike.
  ec2_describe_actions = [
    "ec2:DescribeFlowLogs",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceCreditSpecifications",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribePrefixLists",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcEndpointServices",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
  ]
}

locals {
  envs = toset(concat(var.environments, [var.plan_environment]))

  a = local.account
  p = local.partition
  r = local.region

  state_bucket_arn = "arn:${local.p}:s3:::${local.state_bucket}"

  # Per environment: the ARNs its deploy touches. name is devops/ local.name and the SAM
  # stack name (samconfig.toml): CloudFormation prefixes every generated name with it.
  env = { for e in local.envs : e => {
    name         = "encache-${e}"
    state_object = "${local.state_bucket_arn}/${local.state_keys[e]}"
    state_lock   = "${local.state_bucket_arn}/${local.state_keys[e]}.tflock"
    parameters = [
      "arn:${local.p}:ssm:${local.r}:${local.a}:parameter${trimsuffix(local.param_prefix[e], "/")}",
      "arn:${local.p}:ssm:${local.r}:${local.a}:parameter${local.param_prefix[e]}*",
    ]
    roles             = "arn:${local.p}:iam::${local.a}:role/encache-${e}-*"
    instance_profiles = "arn:${local.p}:iam::${local.a}:instance-profile/encache-${e}-*"
    rds = [
      "arn:${local.p}:rds:${local.r}:${local.a}:db:encache-${e}",
      "arn:${local.p}:rds:${local.r}:${local.a}:subgrp:encache-${e}",
      "arn:${local.p}:rds:${local.r}:${local.a}:pg:encache-${e}-*",
      "arn:${local.p}:rds:${local.r}:${local.a}:snapshot:encache-${e}-final",
    ]
    alarms     = "arn:${local.p}:cloudwatch:${local.r}:${local.a}:alarm:encache-${e}-*"
    dashboards = ["arn:${local.p}:cloudwatch::${local.a}:dashboard/encache-${e}", "arn:${local.p}:cloudwatch::${local.a}:dashboard/encache-${e}-*"]
    stack      = "arn:${local.p}:cloudformation:${local.r}:${local.a}:stack/encache-${e}/*"
    # The stack's functions (SAM names them after the stack) and its PreTraffic hook, which
    # must be named CodeDeployHook_* for SAM's CodeDeploy role to invoke it.
    functions = [
      "arn:${local.p}:lambda:${local.r}:${local.a}:function:encache-${e}-*",
      "arn:${local.p}:lambda:${local.r}:${local.a}:function:CodeDeployHook_encache-${e}-*",
    ]
    upload_bucket = "arn:${local.p}:s3:::encache-${e}-uploads-${local.a}-${local.r}"
    topics        = "arn:${local.p}:sns:${local.r}:${local.a}:encache-${e}-*"
    queues        = "arn:${local.p}:sqs:${local.r}:${local.a}:encache-${e}-*"
    rules         = "arn:${local.p}:events:${local.r}:${local.a}:rule/encache-${e}-*"
    log_groups = [
      "arn:${local.p}:logs:${local.r}:${local.a}:log-group:/aws/lambda/encache-${e}-*",
      "arn:${local.p}:logs:${local.r}:${local.a}:log-group:/aws/apigateway/encache-${e}-*",
      # devops/: the VPC flow logs.
      "arn:${local.p}:logs:${local.r}:${local.a}:log-group:/aws/vpc/encache-${e}-*",
    ]
    budgets           = "arn:${local.p}:budgets::${local.a}:budget/encache-${e}-*"
    codedeploy_app    = "arn:${local.p}:codedeploy:${local.r}:${local.a}:application:encache-${e}-*"
    codedeploy_groups = "arn:${local.p}:codedeploy:${local.r}:${local.a}:deploymentgroup:encache-${e}-*/*"
  } }

  # Shared by the environments of the account (by design, not by wildcard):
  sam_stack      = "arn:${local.p}:cloudformation:${local.r}:${local.a}:stack/aws-sam-cli-managed-default/*"
  sam_bucket     = "arn:${local.p}:s3:::aws-sam-cli-managed-default-samclisourcebucket-*"
  ecr_repository = "arn:${local.p}:ecr:${local.r}:${local.a}:repository/${var.ecr_repository_name}"
  user_pools     = "arn:${local.p}:cognito-idp:${local.r}:${local.a}:userpool/*"
  any_key        = "arn:${local.p}:kms:${local.r}:${local.a}:key/*"
  ec2            = "arn:${local.p}:ec2:${local.r}:${local.a}"

  # The AWS-managed policies CloudFormation (SAM) and devops/ attach to encache-ENV-*
  # roles; no other policy may be attached (AdministratorAccess would be an escalation).
  attachable_policies = [
    "arn:${local.p}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:${local.p}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "arn:${local.p}:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "arn:${local.p}:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:${local.p}:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda",
    "arn:${local.p}:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited",
  ]
  # (Not AmazonSSMManagedInstanceCore: the bastion has its own Session-Manager-only inline
  # policy, and that managed policy reads every SSM parameter of the account.)
  # AWS-managed keys (aws/ssm, aws/rds, aws/ecr, aws/ebs, aws/s3, aws/lambda) are used
  # through their service only.
  key_services = [for s in ["ssm", "rds", "ecr", "ec2", "s3", "lambda"] : "${s}.${local.r}.amazonaws.com"]
}

# ------------------------------------------------------------------ deploy: state, network
data "aws_iam_policy_document" "deploy_state_network" {
  for_each = toset(var.environments)

  statement {
    sid       = "TerraformStateList"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }
  statement {
    sid       = "TerraformStateObject"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.env[each.key].state_object]
  }
  statement {
    sid       = "TerraformStateLockFile"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.env[each.key].state_lock]
  }
  statement {
    sid       = "TerraformStateKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.state.arn]
  }
  statement {
    sid       = "Ec2DescribeHasNoResourceLevelPermissions"
    actions   = local.ec2_describe_actions
    resources = ["*"]
  }
  statement {
    sid = "Ec2NetworkAndBastion"
    actions = [
      "ec2:AssociateIamInstanceProfile",
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:CreateFlowLogs",
      "ec2:CreateSecurityGroup",
      "ec2:CreateTags",
      "ec2:CreateVpcEndpoint",
      "ec2:DeleteFlowLogs",
      "ec2:DeleteSecurityGroup",
      "ec2:DeleteTags",
      "ec2:DeleteVpcEndpoints",
      "ec2:DescribeInstanceAttribute",
      "ec2:DescribeVpcAttribute",
      "ec2:DisassociateIamInstanceProfile",
      "ec2:ModifyInstanceAttribute",
      "ec2:ModifyInstanceMetadataOptions",
      "ec2:ModifySecurityGroupRules",
      "ec2:ModifyVpcEndpoint",
      "ec2:MonitorInstances",
      "ec2:ReplaceIamInstanceProfileAssociation",
      "ec2:RevokeSecurityGroupEgress",
      "ec2:RevokeSecurityGroupIngress",
      "ec2:RunInstances",
      "ec2:StartInstances",
      "ec2:StopInstances",
      "ec2:TerminateInstances",
      "ec2:UnmonitorInstances",
      "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
      "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
    ]
    resources = concat(
      [for t in ["instance", "key-pair", "network-interface", "prefix-list", "route-table", "security-group", "security-group-rule", "subnet", "volume", "vpc", "vpc-endpoint", "vpc-flow-log"] : "${local.ec2}:${t}/*"],
      ["arn:${local.p}:ec2:${local.r}::image/*", "arn:${local.p}:ec2:${local.r}:aws:prefix-list/*"],
    )
  }
  statement {
    sid = "BastionInstanceProfile"
    actions = [
      "iam:AddRoleToInstanceProfile",
      "iam:CreateInstanceProfile",
      "iam:DeleteInstanceProfile",
      "iam:GetInstanceProfile",
      "iam:RemoveRoleFromInstanceProfile",
      "iam:TagInstanceProfile",
      "iam:UntagInstanceProfile",
    ]
    resources = [local.env[each.key].instance_profiles]
  }
  statement {
    sid       = "AwsManagedKeysThroughTheirService"
    actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:RetireGrant"]
    resources = [local.any_key]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.key_services
    }
  }
}

# ------------------------------------------------------------------ deploy: data, auth
data "aws_iam_policy_document" "deploy_data_auth" {
  for_each = toset(var.environments)

  statement {
    sid = "RdsDatabase"
    actions = [
      "rds:AddTagsToResource",
      "rds:CreateDBInstance",
      "rds:CreateDBParameterGroup",
      "rds:CreateDBSnapshot",
      "rds:CreateDBSubnetGroup",
      "rds:DeleteDBInstance",
      "rds:DeleteDBParameterGroup",
      "rds:DeleteDBSubnetGroup",
      "rds:DescribeDBInstances",
      "rds:DescribeDBParameterGroups",
      "rds:DescribeDBParameters",
      "rds:DescribeDBSubnetGroups",
      "rds:ListTagsForResource",
      "rds:ModifyDBInstance",
      "rds:ModifyDBParameterGroup",
      "rds:ModifyDBSubnetGroup",
      "rds:RebootDBInstance",
      "rds:RemoveTagsFromResource",
      "rds:ResetDBParameterGroup",
    ]
    resources = concat(local.env[each.key].rds, ["arn:${local.p}:rds:${local.r}:${local.a}:og:default:postgres-*"])
  }
  statement {
    sid       = "RdsServiceLinkedRoleOnFirstDatabase"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.p}:iam::${local.a}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["rds.amazonaws.com"]
    }
  }
  statement {
    sid = "EcrRepository"
    actions = [
      "ecr:CreateRepository",
      "ecr:DeleteLifecyclePolicy",
      "ecr:DeleteRepository",
      "ecr:DescribeRepositories",
      "ecr:GetLifecyclePolicy",
      "ecr:ListTagsForResource",
      "ecr:PutImageScanningConfiguration",
      "ecr:PutImageTagMutability",
      "ecr:PutLifecyclePolicy",
      "ecr:TagResource",
      "ecr:UntagResource",
    ]
    resources = [local.ecr_repository]
  }
  statement {
    sid = "SsmParameters"
    actions = [
      "ssm:AddTagsToResource",
      "ssm:DeleteParameter",
      "ssm:GetParameter",
      "ssm:GetParameters",
      "ssm:GetParametersByPath",
      "ssm:ListTagsForResource",
      "ssm:PutParameter",
      "ssm:RemoveTagsFromResource",
    ]
    resources = local.env[each.key].parameters
  }
  statement {
    sid       = "SsmPublicAmiParameter"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${local.p}:ssm:${local.r}::parameter/aws/service/ami-amazon-linux-latest/*"]
  }
  statement {
    sid       = "SsmDescribeParametersHasNoResourceLevelPermissions"
    actions   = ["ssm:DescribeParameters"]
    resources = ["*"]
  }
  # devops/kms.tf: the environment's data key (alias/encache-ENV-data). Key ids are
  # random: its Environment tag (devops/ default_tags) scopes it, set when it is created.
  statement {
    sid       = "KmsCreateKeyHasNoResource"
    actions   = ["kms:CreateKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [each.key]
    }
  }
  statement {
    # Tags given to CreateKey need TagResource on every key (the new one has no ARN yet);
    # never on another environment's key (IfExists: a key being created has no tag yet).
    sid       = "DataKeyTagsOnCreate"
    actions   = ["kms:TagResource"]
    resources = [local.any_key]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [each.key]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:ResourceTag/Environment"
      values   = [each.key]
    }
  }
  statement {
    sid = "DataKeyOfThisEnvironment"
    actions = [
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateKeyDescription",
    ]
    resources = [local.any_key]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [each.key]
    }
  }
  statement {
    sid       = "DataKeyAliasOfThisEnvironment"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias"]
    resources = ["arn:${local.p}:kms:${local.r}:${local.a}:alias/encache-${each.key}-*"]
  }
  statement {
    sid       = "KmsListAliasesHasNoResource"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }
  statement {
    sid       = "GetRandomPasswordHasNoResource"
    actions   = ["secretsmanager:GetRandomPassword"]
    resources = ["*"]
  }
  statement {
    sid       = "CognitoCreateUserPoolHasNoResource"
    actions   = ["cognito-idp:CreateUserPool"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [each.key]
    }
  }
  statement {
    sid = "CognitoUserPoolOfThisEnvironment"
    actions = [
      "cognito-idp:CreateUserPoolClient",
      "cognito-idp:DeleteUserPool",
      "cognito-idp:DeleteUserPoolClient",
      "cognito-idp:DescribeUserPool",
      "cognito-idp:DescribeUserPoolClient",
      "cognito-idp:GetUserPoolMfaConfig",
      "cognito-idp:ListTagsForResource",
      "cognito-idp:SetUserPoolMfaConfig",
      "cognito-idp:TagResource",
      "cognito-idp:UntagResource",
      "cognito-idp:UpdateUserPool",
      "cognito-idp:UpdateUserPoolClient",
      # scripts/smoke.py: the throwaway user.
      "cognito-idp:AdminConfirmSignUp",
      "cognito-idp:AdminDeleteUser",
      "cognito-idp:AdminGetUser",
      "cognito-idp:AdminInitiateAuth",
    ]
    resources = [local.user_pools]
    # Pool ids are random: the pool's Environment tag (devops/ default_tags) scopes it.
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [each.key]
    }
  }
  statement {
    sid       = "GetCallerIdentityHasNoResource"
    actions   = ["sts:GetCallerIdentity"]
    resources = ["*"]
  }
}

# ------------------------------------------------------------------ deploy: the stack
data "aws_iam_policy_document" "deploy_stack" {
  for_each = toset(var.environments)

  statement {
    sid = "CloudFormationStackAndChangeSets"
    actions = [
      "cloudformation:CreateChangeSet",
      "cloudformation:DeleteChangeSet",
      "cloudformation:DescribeChangeSet",
      "cloudformation:DescribeStackEvents",
      "cloudformation:DescribeStackResource",
      "cloudformation:DescribeStackResources",
      "cloudformation:DescribeStacks",
      "cloudformation:ExecuteChangeSet",
      "cloudformation:GetTemplate",
      "cloudformation:GetTemplateSummary",
      "cloudformation:ListChangeSets",
      "cloudformation:ListStackResources",
    ]
    # resolve_s3 = true: sam creates (once per account and region) and reads its own stack.
    resources = [local.env[each.key].stack, local.sam_stack]
  }
  statement {
    sid       = "CloudFormationServerlessTransform"
    actions   = ["cloudformation:CreateChangeSet"]
    resources = ["arn:${local.p}:cloudformation:${local.r}:aws:transform/Serverless-2016-10-31"]
  }
  statement {
    sid = "SamArtifactAndUploadBuckets"
    actions = [
      "s3:CreateBucket",
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:GetBucketAcl",
      "s3:GetBucketCORS",
      "s3:GetBucketLocation",
      "s3:GetBucketNotification",
      "s3:GetBucketOwnershipControls",
      "s3:GetBucketPolicy",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketTagging",
      "s3:GetBucketVersioning",
      "s3:GetEncryptionConfiguration",
      "s3:GetLifecycleConfiguration",
      "s3:ListBucket",
      "s3:PutBucketCORS",
      "s3:PutBucketNotification",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketTagging",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = [local.sam_bucket, local.env[each.key].upload_bucket]
  }
  statement {
    sid       = "SamArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${local.sam_bucket}/*"]
  }
  statement {
    sid = "SnsTopicsAndSubscriptions"
    actions = [
      "sns:CreateTopic",
      "sns:DeleteTopic",
      "sns:GetSubscriptionAttributes",
      "sns:GetTopicAttributes",
      "sns:ListSubscriptionsByTopic",
      "sns:ListTagsForResource",
      "sns:SetSubscriptionAttributes",
      "sns:SetTopicAttributes",
      "sns:Subscribe",
      "sns:TagResource",
      "sns:Unsubscribe",
      "sns:UntagResource",
    ]
    resources = [local.env[each.key].topics]
  }
  statement {
    sid = "SqsQueues"
    actions = [
      "sqs:CreateQueue",
      "sqs:DeleteQueue",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ListQueueTags",
      "sqs:SetQueueAttributes",
      "sqs:TagQueue",
      "sqs:UntagQueue",
    ]
    resources = [local.env[each.key].queues]
  }
  statement {
    sid = "EventBridgeRules"
    actions = [
      "events:DeleteRule",
      "events:DescribeRule",
      "events:ListTagsForResource",
      "events:ListTargetsByRule",
      "events:PutRule",
      "events:PutTargets",
      "events:RemoveTargets",
      "events:TagResource",
      "events:UntagResource",
    ]
    resources = [local.env[each.key].rules]
  }
  statement {
    sid = "LogGroups"
    actions = [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:DeleteRetentionPolicy",
      "logs:ListTagsForResource",
      "logs:PutRetentionPolicy",
      "logs:TagResource",
      "logs:UntagResource",
    ]
    resources = concat(local.env[each.key].log_groups, [for g in local.env[each.key].log_groups : "${g}:*"])
  }
  statement {
    sid       = "LogGroupsDescribeIsPerAccount"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.p}:logs:${local.r}:${local.a}:log-group:*"]
  }
  statement {
    sid = "LogDeliveryAndQueryDefinitionsHaveNoResourceLevelPermissions"
    actions = [
      # The HTTP API's access logs (API Gateway sets up a log delivery as the caller).
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
      # The stack's Logs Insights query definitions.
      "logs:DeleteQueryDefinition",
      "logs:DescribeQueryDefinitions",
      "logs:PutQueryDefinition",
    ]
    resources = ["*"]
  }
  statement {
    sid = "AlarmsAndDashboard"
    actions = [
      "cloudwatch:DeleteAlarms",
      "cloudwatch:DeleteDashboards",
      "cloudwatch:DescribeAlarms",
      "cloudwatch:GetDashboard",
      "cloudwatch:ListTagsForResource",
      "cloudwatch:PutDashboard",
      "cloudwatch:PutMetricAlarm",
      "cloudwatch:TagResource",
      "cloudwatch:UntagResource",
    ]
    resources = concat([local.env[each.key].alarms], local.env[each.key].dashboards)
  }
  statement {
    sid = "Budget"
    actions = [
      "budgets:ListTagsForResource",
      "budgets:ModifyBudget",
      "budgets:TagResource",
      "budgets:UntagResource",
      "budgets:ViewBudget",
    ]
    resources = [local.env[each.key].budgets]
  }
  statement {
    # template.yaml's table under the data key: DynamoDB creates its grant as the caller.
    sid       = "DataKeyForTheStacksTable"
    actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
    resources = [local.any_key]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [each.key]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.r}.amazonaws.com"]
    }
  }
  statement {
    sid       = "BudgetBillingView"
    actions   = ["billing:GetBillingViewData"]
    resources = ["arn:${local.p}:billing::${local.a}:billingview/*"]
  }
  statement {
    sid     = "HttpApiIdsAreRandom"
    actions = ["apigateway:DELETE", "apigateway:GET", "apigateway:PATCH", "apigateway:POST", "apigateway:PUT", "apigateway:TagResource", "apigateway:UntagResource"]
    resources = [
      "arn:${local.p}:apigateway:${local.r}::/apis",
      "arn:${local.p}:apigateway:${local.r}::/apis/*",
      "arn:${local.p}:apigateway:${local.r}::/tags/*",
    ]
  }
}

# ------------------------------------------------------------------ deploy: functions
data "aws_iam_policy_document" "deploy_functions" {
  for_each = toset(var.environments)

  # scripts/lib/aliases.py finds the stack's functions by CloudFormation's tags, to record
  # their live versions before a deploy (and for scripts/rollback.sh).
  statement {
    sid       = "TaggingGetResourcesHasNoResourceLevelPermissions"
    actions   = ["tag:GetResources"]
    resources = ["*"]
  }

  statement {
    sid = "LambdaFunctions"
    actions = [
      "lambda:AddPermission",
      "lambda:CreateAlias",
      "lambda:CreateFunction",
      "lambda:DeleteAlias",
      "lambda:DeleteFunction",
      "lambda:DeleteFunctionConcurrency",
      "lambda:DeleteFunctionEventInvokeConfig",
      "lambda:GetAlias",
      "lambda:GetFunction",
      "lambda:GetFunctionCodeSigningConfig",
      "lambda:GetFunctionConfiguration",
      "lambda:GetFunctionEventInvokeConfig",
      "lambda:GetFunctionRecursionConfig",
      "lambda:GetPolicy",
      "lambda:GetProvisionedConcurrencyConfig",
      "lambda:GetRuntimeManagementConfig",
      # The DatabaseSchema custom resource: CloudFormation invokes MigrateFunction as the caller.
      "lambda:InvokeFunction",
      "lambda:ListAliases",
      "lambda:ListTags",
      "lambda:ListVersionsByFunction",
      "lambda:PublishVersion",
      "lambda:PutFunctionConcurrency",
      "lambda:PutFunctionEventInvokeConfig",
      "lambda:PutFunctionRecursionConfig",
      "lambda:PutRuntimeManagementConfig",
      "lambda:RemovePermission",
      "lambda:TagResource",
      "lambda:UntagResource",
      "lambda:UpdateAlias",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
      "lambda:UpdateFunctionEventInvokeConfig",
    ]
    resources = local.env[each.key].functions
  }
  statement {
    sid       = "EventSourceMappingIdsAreRandom"
    actions   = ["lambda:DeleteEventSourceMapping", "lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"]
    resources = ["arn:${local.p}:lambda:${local.r}:${local.a}:event-source-mapping:*"]
    condition {
      test     = "ArnLike"
      variable = "lambda:FunctionArn"
      values   = local.env[each.key].functions
    }
  }
  statement {
    sid       = "CreateEventSourceMappingHasNoResource"
    actions   = ["lambda:CreateEventSourceMapping", "lambda:ListEventSourceMappings"]
    resources = ["*"]
    condition {
      test     = "ArnLike"
      variable = "lambda:FunctionArn"
      values   = local.env[each.key].functions
    }
  }
  statement {
    # The functions' roles (SAM) and the bastion's (devops/): CloudFormation and
    # Terraform name them encache-ENV-*.
    sid = "EnvironmentRoles"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRole",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:ListRoleTags",
      "iam:PutRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = [local.env[each.key].roles]
  }
  statement {
    sid       = "EnvironmentRolesGetOnlyListedManagedPolicies"
    actions   = ["iam:AttachRolePolicy"]
    resources = [local.env[each.key].roles]
    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = local.attachable_policies
    }
  }
  statement {
    sid       = "PassEnvironmentRolesToTheirService"
    actions   = ["iam:PassRole"]
    resources = [local.env[each.key].roles]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["lambda.amazonaws.com", "codedeploy.amazonaws.com", "ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"]
    }
  }
  statement {
    # SAM DeploymentPreference: an application, a deployment group per function, and the
    # deployments CloudFormation starts on an alias update.
    sid = "CodeDeployApplication"
    actions = [
      "codedeploy:CreateApplication",
      "codedeploy:DeleteApplication",
      "codedeploy:GetApplication",
      "codedeploy:GetApplicationRevision",
      "codedeploy:ListTagsForResource",
      "codedeploy:RegisterApplicationRevision",
      "codedeploy:TagResource",
      "codedeploy:UntagResource",
    ]
    resources = [local.env[each.key].codedeploy_app]
  }
  statement {
    sid = "CodeDeployDeploymentGroups"
    actions = [
      "codedeploy:CreateDeployment",
      "codedeploy:CreateDeploymentGroup",
      "codedeploy:DeleteDeploymentGroup",
      "codedeploy:GetDeployment",
      "codedeploy:GetDeploymentGroup",
      "codedeploy:ListDeployments",
      "codedeploy:ListTagsForResource",
      "codedeploy:StopDeployment",
      "codedeploy:TagResource",
      "codedeploy:UntagResource",
      "codedeploy:UpdateDeploymentGroup",
    ]
    resources = [local.env[each.key].codedeploy_groups]
  }
  statement {
    sid       = "CodeDeployLambdaConfigs"
    actions   = ["codedeploy:GetDeploymentConfig"]
    resources = ["arn:${local.p}:codedeploy:${local.r}:${local.a}:deploymentconfig:CodeDeployDefault.Lambda*"]
  }
}

# ------------------------------------------------------------------ plan (pull requests)
# terraform plan of devops/ for the plan environment: every read that plan's refresh and
# data sources make, the state, and writing/deleting only its lock file.
data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "TerraformStateList"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }
  statement {
    sid       = "TerraformStateRead"
    actions   = ["s3:GetObject"]
    resources = [local.env[var.plan_environment].state_object]
  }
  statement {
    sid       = "TerraformStateLockFileOnly"
    actions   = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    resources = [local.env[var.plan_environment].state_lock]
  }
  statement {
    # Decrypt reads the state; GenerateDataKey encrypts the lock file it writes.
    sid       = "TerraformStateKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
    resources = [aws_kms_key.state.arn]
  }
  statement {
    sid       = "Ec2DescribeHasNoResourceLevelPermissions"
    actions   = local.ec2_describe_actions
    resources = ["*"]
  }
  statement {
    sid       = "Ec2ReadAttributes"
    actions   = ["ec2:DescribeInstanceAttribute", "ec2:DescribeVpcAttribute"]
    resources = ["${local.ec2}:instance/*", "${local.ec2}:vpc/*"]
  }
  statement {
    sid = "RdsRead"
    actions = [
      "rds:DescribeDBInstances",
      "rds:DescribeDBParameterGroups",
      "rds:DescribeDBParameters",
      "rds:DescribeDBSubnetGroups",
      "rds:ListTagsForResource",
    ]
    resources = local.env[var.plan_environment].rds
  }
  statement {
    sid       = "EcrRead"
    actions   = ["ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource"]
    resources = [local.ecr_repository]
  }
  statement {
    sid = "IamRead"
    actions = [
      "iam:GetInstanceProfile",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
    ]
    resources = [local.env[var.plan_environment].roles, local.env[var.plan_environment].instance_profiles]
  }
  statement {
    sid       = "CognitoRead"
    actions   = ["cognito-idp:DescribeUserPool", "cognito-idp:DescribeUserPoolClient", "cognito-idp:GetUserPoolMfaConfig", "cognito-idp:ListTagsForResource"]
    resources = [local.user_pools]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [var.plan_environment]
    }
  }
  statement {
    sid       = "SsmRead"
    actions   = ["ssm:GetParameter", "ssm:GetParameters", "ssm:ListTagsForResource"]
    resources = local.env[var.plan_environment].parameters
  }
  statement {
    sid       = "SsmPublicAmiParameter"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${local.p}:ssm:${local.r}::parameter/aws/service/ami-amazon-linux-latest/*"]
  }
  statement {
    sid       = "SsmDescribeParametersHasNoResourceLevelPermissions"
    actions   = ["ssm:DescribeParameters"]
    resources = ["*"]
  }
  statement {
    sid       = "DecryptSecureStringsThroughSsm"
    actions   = ["kms:Decrypt"]
    resources = [local.any_key]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.r}.amazonaws.com"]
    }
  }
  statement {
    sid       = "DataKeyRead"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    resources = [local.any_key]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [var.plan_environment]
    }
  }
  statement {
    sid       = "KmsListAliasesHasNoResource"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }
  statement {
    sid       = "AlarmsRead"
    actions   = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
    resources = [local.env[var.plan_environment].alarms]
  }
  statement {
    # devops/'s VPC flow log group; DescribeLogGroups lists per account and region.
    sid       = "LogGroupsDescribeIsPerAccount"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.p}:logs:${local.r}:${local.a}:log-group:*"]
  }
  statement {
    sid       = "FlowLogGroupTags"
    actions   = ["logs:ListTagsForResource"]
    resources = ["arn:${local.p}:logs:${local.r}:${local.a}:log-group:/aws/vpc/encache-${var.plan_environment}-*"]
  }
  statement {
    # devops/'s ephemeral passwords are opened during plan too (nothing is stored).
    sid       = "GetRandomPasswordHasNoResource"
    actions   = ["secretsmanager:GetRandomPassword"]
    resources = ["*"]
  }
  statement {
    sid       = "GetCallerIdentityHasNoResource"
    actions   = ["sts:GetCallerIdentity"]
    resources = ["*"]
  }
}
