# Shared encache infrastructure: the network the VPC functions run in, PostgreSQL, the
# bastion, the ML base image registry, the Cognito user pool (module auth) and every
# shared SSM parameter template.yaml reads (names: contracts/ssm-parameters.json).
#
# Two passes (scripts/deploy.sh runs them in order):
#   1. terraform apply                               (before the SAM stack exists)
#   2. terraform apply -var wire_auth_triggers=true  (after sam deploy + post-deploy sync)

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project     = "encache"
      Environment = var.env
      ManagedBy   = "terraform"
    })
  }
}

data "aws_partition" "current" {}

locals {
  name = "${var.name_prefix}-${var.env}"

  # What differs by environment, in one map (prod: a standby, 35 days of backups, 90 days
  # of network logs); a variable set explicitly wins over its environment's value.
  # stage is prod's posture, where a release is proven before prod: the same Multi-AZ
  # standby (failover and maintenance behave as in prod), deletion protection and 90 days
  # of flow logs (an incident there is investigated as in prod; its traffic, hence the
  # log volume, is small). Smaller where only prod's data needs it: 14 days of backups
  # (stage holds test data; two weeks cover a release cycle and let restores be
  # rehearsed) instead of 35. Instance class and storage are operator inputs
  # (terraform.tfvars.example): stage keeps the small defaults unless a load test needs
  # prod's class.
  environment_settings = {
    dev   = { db_multi_az = false, db_backup_retention_days = 7, db_deletion_protection = true, flow_log_retention_days = 30 }
    stage = { db_multi_az = true, db_backup_retention_days = 14, db_deletion_protection = true, flow_log_retention_days = 90 }
    prod  = { db_multi_az = true, db_backup_retention_days = 35, db_deletion_protection = true, flow_log_retention_days = 90 }
  }
  explicit_settings = {
    db_multi_az              = var.db_multi_az
    db_backup_retention_days = var.db_backup_retention_days
    db_deletion_protection   = var.db_deletion_protection
    flow_log_retention_days  = var.flow_log_retention_days
  }
  settings = {
    for k, v in local.environment_settings[var.env] : k => (local.explicit_settings[k] == null ? v : local.explicit_settings[k])
  }

  # The one list of shared parameter names (also read by scripts/check-contracts.py).
  contract     = jsondecode(file("${path.module}/../contracts/ssm-parameters.json"))
  param_prefix = replace(local.contract.parameter_prefix, "{env}", var.env)
}

# ================================================================== network
# The default VPC: no NAT gateway. Functions reach S3 through the gateway endpoint and
# the other AWS APIs they call through interface endpoints.
data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

data "aws_route_table" "main" {
  vpc_id = data.aws_vpc.default.id
  filter {
    name   = "association.main"
    values = ["true"]
  }
}

locals {
  subnet_ids          = sort(data.aws_subnets.default.ids)
  endpoint_subnet_ids = slice(local.subnet_ids, 0, min(var.endpoint_subnet_count, length(local.subnet_ids)))
  # Session Manager needs these three from inside a VPC without internet access.
  session_manager_services = ["ssm", "ssmmessages", "ec2messages"]
  interface_services = var.enable_interface_endpoints ? toset(concat(
    var.interface_endpoint_services,
    var.enable_bastion ? local.session_manager_services : [],
  )) : toset([])
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = data.aws_vpc.default.id
  service_name      = "com.amazonaws.${var.aws_region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [data.aws_route_table.main.id]
  tags              = { Name = "${local.name}-s3" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_services

  vpc_id              = data.aws_vpc.default.id
  service_name        = "com.amazonaws.${var.aws_region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.endpoint_subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
  tags                = { Name = "${local.name}-${each.key}" }
}

# ------------------------------------------------------------------ security groups
resource "aws_security_group" "function" {
  #checkov:skip=CKV2_AWS_5:attached to the Lambda functions by template.yaml (VpcConfig), outside this Terraform
  name        = "${local.name}-function"
  description = "encache VPC Lambda functions: out to PostgreSQL and AWS endpoints only"
  vpc_id      = data.aws_vpc.default.id
  tags        = { Name = "${local.name}-function" }
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "encache PostgreSQL: 5432 from the function and bastion groups only"
  vpc_id      = data.aws_vpc.default.id
  tags        = { Name = "${local.name}-database" }
}

resource "aws_security_group" "endpoints" {
  name        = "${local.name}-endpoints"
  description = "encache interface VPC endpoints: HTTPS from the function and bastion groups"
  vpc_id      = data.aws_vpc.default.id
  tags        = { Name = "${local.name}-endpoints" }
}

resource "aws_security_group" "bastion" {
  count = var.enable_bastion ? 1 : 0

  name        = "${local.name}-bastion"
  description = "encache bastion: no inbound unless operator_ssh_cidrs is set"
  vpc_id      = data.aws_vpc.default.id
  tags        = { Name = "${local.name}-bastion" }
}

locals {
  # Groups allowed into the database and the endpoints: the functions, and the bastion when it exists.
  client_security_groups = merge(
    { function = aws_security_group.function.id },
    var.enable_bastion ? { bastion = aws_security_group.bastion[0].id } : {},
  )
}

# Standalone rules (not inline blocks): the function and database groups refer to each other.
resource "aws_security_group_rule" "database_from_clients" {
  for_each = local.client_security_groups

  security_group_id        = aws_security_group.database.id
  type                     = "ingress"
  description              = "PostgreSQL from the ${each.key} group"
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
  source_security_group_id = each.value
}

resource "aws_security_group_rule" "clients_to_database" {
  for_each = local.client_security_groups

  security_group_id        = each.value
  type                     = "egress"
  description              = "PostgreSQL to the database group"
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
  source_security_group_id = aws_security_group.database.id
}

resource "aws_security_group_rule" "endpoints_from_clients" {
  for_each = local.client_security_groups

  security_group_id        = aws_security_group.endpoints.id
  type                     = "ingress"
  description              = "HTTPS from the ${each.key} group"
  protocol                 = "tcp"
  from_port                = 443
  to_port                  = 443
  source_security_group_id = each.value
}

resource "aws_security_group_rule" "clients_to_endpoints" {
  for_each = local.client_security_groups

  security_group_id        = each.value
  type                     = "egress"
  description              = "HTTPS to the interface endpoints"
  protocol                 = "tcp"
  from_port                = 443
  to_port                  = 443
  source_security_group_id = aws_security_group.endpoints.id
}

resource "aws_security_group_rule" "clients_to_s3" {
  for_each = local.client_security_groups

  security_group_id = each.value
  type              = "egress"
  description       = "HTTPS to S3 through the gateway endpoint"
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_ids   = [aws_vpc_endpoint.s3.prefix_list_id]
}

resource "aws_security_group_rule" "bastion_ssh" {
  #checkov:skip=CKV_AWS_24:opened only for the operator_ssh_cidrs the operator lists; validation rejects 0.0.0.0/0 and the default is no rule
  count = var.enable_bastion && length(var.operator_ssh_cidrs) > 0 ? 1 : 0

  security_group_id = aws_security_group.bastion[0].id
  type              = "ingress"
  description       = "SSH from the operator networks"
  protocol          = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_blocks       = var.operator_ssh_cidrs
}

# ================================================================== network logs
# Flow logs of the VPC the database and the functions share: who reached (or was refused
# by) the database's security group, for an incident's timeline. To CloudWatch Logs with
# a retention, through a role only VPC Flow Logs of this account may assume.
resource "aws_cloudwatch_log_group" "flow_logs" {
  #checkov:skip=CKV_AWS_338:local.settings.flow_log_retention_days (stage and prod 90: an incident's timeline, at a cost that scales with traffic); a year where an audit requires it
  name              = "/aws/vpc/${local.name}-flow-logs"
  retention_in_days = local.settings.flow_log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ec2:${var.aws_region}:${data.aws_caller_identity.current.account_id}:vpc-flow-log/*"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${local.name}-vpc-flow-logs"
  description        = "VPC Flow Logs delivery to ${aws_cloudwatch_log_group.flow_logs.name} only."
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs_delivery" {
  statement {
    sid       = "DeliverToItsLogGroupOnly"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "deliver-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs_delivery.json
}

resource "aws_flow_log" "vpc" {
  vpc_id                   = data.aws_vpc.default.id
  traffic_type             = var.flow_log_traffic_type
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 600
  tags = {
    Name = "${local.name}-vpc"
  }
}

# ================================================================== database
locals {
  create_db = var.enable_rds
}

resource "aws_db_subnet_group" "main" {
  count = local.create_db ? 1 : 0

  name        = local.name
  description = "encache PostgreSQL subnets (default VPC)"
  subnet_ids  = local.subnet_ids
}

resource "aws_db_parameter_group" "main" {
  count = local.create_db ? 1 : 0

  name        = "${local.name}-postgres15"
  family      = "postgres15"
  description = "encache PostgreSQL 15: TLS only, slow and DDL statements logged"

  dynamic "parameter" {
    # TLS only, whatever db_parameters says (its validation refuses "0" too): the
    # functions verify the server (sslmode=verify-full), and nothing connects in clear.
    for_each = merge(var.db_parameters, { "rds.force_ssl" = "1" })
    content {
      name  = parameter.key
      value = parameter.value
    }
  }
}

# The password never touches state: generated by Secrets Manager for this run only and
# sent write-only to RDS and SSM when secrets_version changes.
ephemeral "aws_secretsmanager_random_password" "db" {
  count = local.create_db ? 1 : 0

  password_length     = 32
  exclude_punctuation = true
}

resource "aws_db_instance" "main" {
  #checkov:skip=CKV_AWS_157:Multi-AZ is local.settings.db_multi_az (true for stage and prod, local.environment_settings); single-AZ keeps dev cheap
  #checkov:skip=CKV_AWS_353:Performance Insights is not offered on the default db.t4g.micro class; slow queries are logged instead
  #checkov:skip=CKV_AWS_118:enhanced monitoring needs an extra IAM role and costs; CloudWatch metrics and exported logs suffice here
  #checkov:skip=CKV_AWS_161:the functions log in with the password from the SSM SecureString; IAM auth would need a token per connection
  #checkov:skip=CKV2_AWS_69:TLS is enforced by rds.force_ssl=1, merged over var.db_parameters in aws_db_parameter_group.main, which checkov cannot resolve
  count = local.create_db ? 1 : 0

  identifier     = local.name
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  # The data key for a new instance; never changed afterwards (lifecycle below, devops/kms.tf).
  kms_key_id = aws_kms_key.data.arn

  db_name             = var.db_name
  username            = var.db_username
  password_wo         = ephemeral.aws_secretsmanager_random_password.db[0].random_password
  password_wo_version = var.secrets_version

  db_subnet_group_name   = aws_db_subnet_group.main[0].name
  parameter_group_name   = aws_db_parameter_group.main[0].name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = local.settings.db_multi_az

  backup_retention_period         = local.settings.db_backup_retention_days
  copy_tags_to_snapshot           = true
  deletion_protection             = local.settings.db_deletion_protection
  skip_final_snapshot             = var.db_skip_final_snapshot
  final_snapshot_identifier       = "${local.name}-final"
  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  apply_immediately               = false

  lifecycle {
    # A new kms_key_id would replace the instance: an empty database. An instance keeps
    # the key it was created with; the check in devops/kms.tf warns while that is not the
    # data key, and docs/operations.md#database-encryption-key moves it (snapshot copy).
    ignore_changes = [kms_key_id]
  }
}

locals {
  db_host     = local.create_db ? aws_db_instance.main[0].address : var.existing_db_host
  db_port     = local.create_db ? aws_db_instance.main[0].port : var.existing_db_port
  db_name     = local.create_db ? var.db_name : var.existing_db_name
  db_username = local.create_db ? var.db_username : var.existing_db_username
  # Ephemeral: usable only in write-only arguments.
  db_password = local.create_db ? ephemeral.aws_secretsmanager_random_password.db[0].random_password : var.db_password
}

# ================================================================== database alarms
# CPU, free storage and connections of the database this module creates, notifying the
# stack's alarm topic (AlarmTopicArn, read in the second pass like the trigger ARNs), so
# they reach Discord with every other alarm. The second pass needs the stack deployed and
# synced first (scripts/deploy.sh runs it after both). Runbook: docs/operations.md.
data "aws_ssm_parameter" "alarm_topic" {
  count = local.create_db && var.wire_auth_triggers ? 1 : 0
  name  = "${local.param_prefix}stack/AlarmTopicArn"
}

locals {
  db_alarms = local.create_db && var.wire_auth_triggers ? {
    cpu = {
      metric    = "CPUUtilization", statistic = "Average", comparison = "GreaterThanThreshold"
      threshold = 80, periods = 3, missing = "missing"
      about     = "CPU over 80 % for 15 minutes: slow queries or too much load for the instance class."
    }
    storage = {
      metric    = "FreeStorageSpace", statistic = "Minimum", comparison = "LessThanThreshold"
      threshold = var.db_free_storage_alarm_gb * 1073741824, periods = 2, missing = "missing"
      about     = "Free storage under db_free_storage_alarm_gb for 10 minutes: storage autoscaling (which grows it at 10 % free) could not keep up or is at db_max_allocated_storage_gb."
    }
    connections = {
      metric    = "DatabaseConnections", statistic = "Maximum", comparison = "GreaterThanThreshold"
      threshold = var.db_connections_alarm_threshold, periods = 2, missing = "missing"
      about     = "Connections near max_connections: new function containers will fail to connect (503s)."
    }
  } : {}
}

resource "aws_cloudwatch_metric_alarm" "database" {
  for_each = local.db_alarms

  alarm_name          = "${local.name}-db-${each.key}"
  alarm_description   = "${each.value.about} Runbook: docs/operations.md#database"
  namespace           = "AWS/RDS"
  metric_name         = each.value.metric
  dimensions          = { DBInstanceIdentifier = aws_db_instance.main[0].identifier }
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.periods
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  # No data from a database is itself news: INSUFFICIENT_DATA is forwarded (yellow).
  treat_missing_data        = each.value.missing
  alarm_actions             = [data.aws_ssm_parameter.alarm_topic[0].insecure_value]
  ok_actions                = [data.aws_ssm_parameter.alarm_topic[0].insecure_value]
  insufficient_data_actions = [data.aws_ssm_parameter.alarm_topic[0].insecure_value]
  tags                      = { "encache:plan" = "infra-and-deployment" }
}

# ================================================================== bastion
data "aws_ssm_parameter" "bastion_ami" {
  count = var.enable_bastion && var.bastion_ami_id == "" ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

data "aws_iam_policy_document" "bastion_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "bastion" {
  count = var.enable_bastion ? 1 : 0

  name               = "${local.name}-bastion"
  description        = "encache bastion: Session Manager only"
  assume_role_policy = data.aws_iam_policy_document.bastion_assume.json
}

# Session Manager and nothing else: what the SSM Agent needs to register the instance and
# carry a session (AWS's minimal Session Manager instance policy). Not
# AmazonSSMManagedInstanceCore: its ssm:GetParameter(s) on "*" would let anyone on the
# bastion read every SecureString in the account, the database password included. An
# operator reads the password with their own credentials (README, Operations), and no
# Run Command, State Manager, inventory or patching reaches the bastion.
data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "bastion_session_manager" {
  statement {
    sid       = "RegisterThisAccountsInstances"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["arn:${data.aws_partition.current.partition}:ec2:${var.aws_region}:${data.aws_caller_identity.current.account_id}:instance/*"]
  }
  statement {
    # The session channels: ssmmessages has no resource type to scope to.
    sid = "SessionChannels"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "bastion_session_manager" {
  count = var.enable_bastion ? 1 : 0

  name   = "session-manager-only"
  role   = aws_iam_role.bastion[0].id
  policy = data.aws_iam_policy_document.bastion_session_manager.json
}

resource "aws_iam_instance_profile" "bastion" {
  count = var.enable_bastion ? 1 : 0

  name = "${local.name}-bastion"
  role = aws_iam_role.bastion[0].name
}

resource "aws_instance" "bastion" {
  count = var.enable_bastion ? 1 : 0

  ami                    = var.bastion_ami_id != "" ? var.bastion_ami_id : data.aws_ssm_parameter.bastion_ami[0].insecure_value
  instance_type          = var.bastion_instance_type
  subnet_id              = local.subnet_ids[0]
  vpc_security_group_ids = [aws_security_group.bastion[0].id]
  iam_instance_profile   = aws_iam_instance_profile.bastion[0].name
  key_name               = length(var.operator_ssh_cidrs) > 0 ? var.bastion_key_name : null
  # A public address only when SSH is opened; Session Manager goes through the endpoints.
  associate_public_ip_address = length(var.operator_ssh_cidrs) > 0
  monitoring                  = true
  ebs_optimized               = true

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    encrypted   = true
    volume_type = "gp3"
    volume_size = 8
  }

  tags = { Name = "${local.name}-bastion" }

  lifecycle {
    # A new AMI release must not replace the bastion on every apply.
    ignore_changes = [ami]
  }
}

# ================================================================== container registry
resource "aws_ecr_repository" "base_ml" {
  name                 = var.ecr_repository_name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "base_ml" {
  repository = aws_ecr_repository.base_ml.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.ecr_keep_images} images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

# ================================================================== auth (own module)
module "auth" {
  source = "./modules/auth"

  name                    = local.name
  user_pool_tier          = var.cognito_user_pool_tier
  advanced_security_mode  = var.cognito_advanced_security_mode
  password_minimum_length = var.cognito_password_minimum_length
  allow_password_auth     = var.cognito_allow_password_auth
  token_validity          = var.cognito_token_validity
  deletion_protection     = local.settings.db_deletion_protection

  wire_triggers = var.wire_auth_triggers
  trigger_parameter_names = {
    for key, p in local.contract.read_from_stack :
    p.output => "${local.param_prefix}${key}" if endswith(p.output, "FunctionArn")
  }
}
