# Inputs of the shared encache infrastructure. Safe example values: terraform.tfvars.example.

# ------------------------------------------------------------------ environment
variable "env" {
  description = "Deployment environment; every shared SSM parameter goes under /encache/{env}/."
  type        = string
  validation {
    condition     = contains(["dev", "stage", "prod"], var.env)
    error_message = "env must be \"dev\", \"stage\" or \"prod\" (template.yaml's Env parameter allows only these)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (resources are named <prefix>-<env>-...)."
  type        = string
  default     = "encache"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region of the stack (must match samconfig.toml's region)."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like us-east-1."
  }
}

variable "tags" {
  description = "Extra tags for every resource (Project, Environment and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

# ------------------------------------------------------------------ network
variable "enable_interface_endpoints" {
  description = "Create interface VPC endpoints so in-VPC functions reach AWS APIs (SSM) without a NAT gateway. Turn off only where they cannot exist (the emulator)."
  type        = bool
  default     = true
}

variable "interface_endpoint_services" {
  description = "AWS services the VPC functions call, reached through interface endpoints (short names, e.g. ssm). The bastion's Session Manager services are added when the bastion is on."
  type        = list(string)
  default     = ["ssm"]
  validation {
    condition     = alltrue([for s in var.interface_endpoint_services : can(regex("^[a-z0-9.-]+$", s))])
    error_message = "interface_endpoint_services holds short service names such as ssm or secretsmanager."
  }
}

variable "endpoint_subnet_count" {
  description = "How many default-VPC subnets get an interface endpoint network interface (each costs money per AZ; private DNS serves the whole VPC)."
  type        = number
  default     = 2
  validation {
    condition     = var.endpoint_subnet_count >= 1 && var.endpoint_subnet_count <= 6
    error_message = "endpoint_subnet_count must be between 1 and 6."
  }
}

# ------------------------------------------------------------------ database
variable "flow_log_traffic_type" {
  description = "Which VPC flow log records to keep: ALL (accepted and rejected; what an incident timeline needs), REJECT (cheaper) or ACCEPT."
  type        = string
  default     = "ALL"
  validation {
    condition     = contains(["ALL", "ACCEPT", "REJECT"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ALL, ACCEPT or REJECT."
  }
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept in CloudWatch Logs (a value CloudWatch accepts). Unset: the environment's (dev 30, stage and prod 90)."
  type        = number
  default     = null
  validation {
    condition     = var.flow_log_retention_days == null || contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], coalesce(var.flow_log_retention_days, 90))
    error_message = "flow_log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, ...)."
  }
}

variable "enable_rds" {
  description = "Create the RDS PostgreSQL instance. False: use the existing database given by existing_db_* and db_password."
  type        = bool
  default     = true
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"
  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "db_instance_class must look like db.t4g.micro."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL major (or major.minor) version; the schema is tested on 15."
  type        = string
  default     = "15"
  validation {
    condition     = can(regex("^15(\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be PostgreSQL 15 (15 or 15.x)."
  }
}

variable "db_allocated_storage_gb" {
  description = "Initial storage in GiB."
  type        = number
  default     = 20
  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 65536
    error_message = "db_allocated_storage_gb must be between 20 and 65536."
  }
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling in GiB (0 turns autoscaling off)."
  type        = number
  default     = 100
  validation {
    condition     = var.db_max_allocated_storage_gb == 0 || var.db_max_allocated_storage_gb >= 20
    error_message = "db_max_allocated_storage_gb must be 0 or at least 20."
  }
}

variable "db_backup_retention_days" {
  description = "Days of automated backups kept. Unset: the environment's (local.environment_settings: dev 7, stage 14, prod 35)."
  type        = number
  default     = null
  validation {
    condition     = var.db_backup_retention_days == null || (coalesce(var.db_backup_retention_days, 1) >= 1 && coalesce(var.db_backup_retention_days, 1) <= 35)
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_multi_az" {
  description = "Run a standby in a second AZ. Unset: the environment's (dev false, stage and prod true)."
  type        = bool
  default     = null
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (and the user pool) until this is turned off. Unset: the environment's (true for all three: dev holds real sign-ups too)."
  type        = bool
  default     = null
}

variable "db_skip_final_snapshot" {
  description = "Skip the final snapshot when the database is destroyed (only for throwaway environments)."
  type        = bool
  default     = false
}

variable "db_parameters" {
  description = "PostgreSQL settings of the instance's parameter group (slow and DDL statements logged by default). rds.force_ssl is always 1 (merged in devops/main.tf); setting it to anything else is refused."
  type        = map(string)
  default = {
    "rds.force_ssl"              = "1"
    "log_min_duration_statement" = "1000"
    "log_statement"              = "ddl"
  }
  validation {
    condition     = lookup(var.db_parameters, "rds.force_ssl", "1") == "1"
    error_message = "rds.force_ssl must stay 1: the functions connect with sslmode=verify-full, and nothing may reach the database in clear."
  }
}

variable "db_name" {
  description = "Database name created in RDS."
  type        = string
  default     = "encache"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must start with a letter and hold only a-z, 0-9 and _."
  }
}

variable "db_username" {
  description = "Master user of the RDS instance: only the migration function logs in as it (the others use db_app_username)."
  type        = string
  default     = "encache"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_username)) && !contains(["postgres", "admin", "rdsadmin"], var.db_username)
    error_message = "db_username must be a lower-case identifier other than postgres/admin/rdsadmin."
  }
}

variable "db_app_username" {
  description = "Login role the functions (all but the migration function) use: created by the migration function as a member of encache_app, which holds only the grants the migrations give (migrations/). Its password is the generated SecureString db/app-password."
  type        = string
  default     = "encache_fn"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_app_username)) && !contains(["postgres", "admin", "rdsadmin", "encache_app"], var.db_app_username)
    error_message = "db_app_username must be a lower-case identifier other than postgres/admin/rdsadmin/encache_app."
  }
}

variable "existing_db_host" {
  description = "Host of an existing PostgreSQL 15 database (only when enable_rds = false)."
  type        = string
  default     = null
}

variable "existing_db_port" {
  description = "Port of the existing database (only when enable_rds = false)."
  type        = number
  default     = 5432
}

variable "existing_db_name" {
  description = "Database name of the existing database (only when enable_rds = false)."
  type        = string
  default     = null
}

variable "existing_db_username" {
  description = "User of the existing database (only when enable_rds = false)."
  type        = string
  default     = null
}

variable "db_password" {
  description = "Password of the existing database (only when enable_rds = false; with RDS a random one is generated). Ephemeral: never stored in state or plan; needed again only when secrets_version changes."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "data_key_deletion_window_days" {
  description = "Days a scheduled deletion of the environment's data key (alias/encache-ENV-data) waits and can be cancelled (7-30). Once it is deleted, nothing it encrypted can be read again."
  type        = number
  default     = 30
  validation {
    condition     = var.data_key_deletion_window_days >= 7 && var.data_key_deletion_window_days <= 30 && floor(var.data_key_deletion_window_days) == var.data_key_deletion_window_days
    error_message = "data_key_deletion_window_days must be a whole number from 7 to 30."
  }
}

variable "secrets_version" {
  description = "Bump to rotate: every generated secret (database password, signing keys) is regenerated and every SecureString rewritten. Write-only values are sent only when this changes."
  type        = number
  default     = 1
  validation {
    condition     = var.secrets_version >= 1 && floor(var.secrets_version) == var.secrets_version
    error_message = "secrets_version must be a positive whole number."
  }
}

# ------------------------------------------------------------------ bastion
variable "enable_bastion" {
  description = "Create the bastion host (SSM Session Manager, port forwarding to the database)."
  type        = bool
  default     = true
}

variable "bastion_instance_type" {
  description = "Bastion EC2 instance type (arm64)."
  type        = string
  default     = "t4g.nano"
}

variable "bastion_ami_id" {
  description = "AMI of the bastion; empty = the latest Amazon Linux 2023 arm64 (from AWS's public SSM parameter)."
  type        = string
  default     = ""
  validation {
    condition     = var.bastion_ami_id == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.bastion_ami_id))
    error_message = "bastion_ami_id must be empty or an AMI id (ami-...)."
  }
}

variable "operator_ssh_cidrs" {
  description = "CIDRs allowed to SSH into the bastion. Empty (the default): no inbound rule at all, Session Manager only."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.operator_ssh_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "operator_ssh_cidrs must be valid CIDRs and never 0.0.0.0/0."
  }
}

variable "bastion_key_name" {
  description = "EC2 key pair for SSH (only used when operator_ssh_cidrs is set)."
  type        = string
  default     = null
}

# ------------------------------------------------------------------ container registry
variable "ecr_repository_name" {
  description = "Name of the ML base image repository."
  type        = string
  default     = "encache-base-ml"
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]{1,255}$", var.ecr_repository_name))
    error_message = "ecr_repository_name must be a valid ECR repository name."
  }
}

variable "ecr_keep_images" {
  description = "How many tagged images the encache-base-ml lifecycle policy keeps."
  type        = number
  default     = 20
  validation {
    condition     = var.ecr_keep_images >= 1
    error_message = "ecr_keep_images must be at least 1."
  }
}

variable "ecr_force_delete" {
  description = "Let destroy delete the repository with its images (throwaway environments only)."
  type        = bool
  default     = false
}

# ------------------------------------------------------------------ auth
variable "db_connections_alarm_threshold" {
  description = "DatabaseConnections above which the database alarm fires: about 75 % of max_connections. RDS PostgreSQL's default is LEAST(DBInstanceClassMemory / 9531392, 5000), and DBInstanceClassMemory leaves out what the OS keeps: check with SHOW max_connections (about 80-87 on db.t4g.micro) and set this for the class in use."
  type        = number
  default     = 60
}

variable "db_free_storage_alarm_gb" {
  description = "Free storage (GiB) under which the database alarm fires; below the 10 % at which storage autoscaling grows the volume, so normal growth does not page."
  type        = number
  default     = 1
}

variable "wire_auth_triggers" {
  description = "Second pass: wire the Cognito triggers to the functions whose ARNs the post-deploy sync wrote under /encache/{env}/stack/. False for the very first apply (the stack does not exist yet)."
  type        = bool
  default     = false
}

variable "cognito_user_pool_tier" {
  description = "Cognito feature plan; pre-token-generation V2_0 needs ESSENTIALS or PLUS, threat protection (cognito_advanced_security_mode) PLUS (null: the account default, for the emulator)."
  type        = string
  default     = "PLUS"
  nullable    = true
  validation {
    condition     = contains(["LITE", "ESSENTIALS", "PLUS"], coalesce(var.cognito_user_pool_tier, "LITE"))
    error_message = "cognito_user_pool_tier must be LITE, ESSENTIALS or PLUS."
  }
}

variable "cognito_advanced_security_mode" {
  description = "Cognito threat protection: AUDIT (the least: risky sign-ins logged and scored), ENFORCED, or OFF for the emulator only; AUDIT/ENFORCED need the PLUS tier."
  type        = string
  default     = "AUDIT"
  validation {
    condition     = contains(["OFF", "AUDIT", "ENFORCED"], var.cognito_advanced_security_mode)
    error_message = "cognito_advanced_security_mode must be OFF, AUDIT or ENFORCED."
  }
  validation {
    condition     = var.cognito_advanced_security_mode == "OFF" || coalesce(var.cognito_user_pool_tier, "PLUS") == "PLUS"
    error_message = "cognito_advanced_security_mode AUDIT or ENFORCED needs cognito_user_pool_tier PLUS."
  }
}

variable "cognito_password_minimum_length" {
  description = "Minimum password length of the user pool."
  type        = number
  default     = 12
  validation {
    condition     = var.cognito_password_minimum_length >= 8 && var.cognito_password_minimum_length <= 99
    error_message = "cognito_password_minimum_length must be between 8 and 99."
  }
}

variable "cognito_allow_password_auth" {
  description = "Also allow USER_PASSWORD_AUTH (plain password to Cognito over TLS) besides SRP; for scripted tests and the smoke test."
  type        = bool
  default     = false
}

variable "cognito_token_validity" {
  description = "Token lifetimes: access and id tokens in minutes, refresh tokens in days."
  type = object({
    access_minutes = number
    id_minutes     = number
    refresh_days   = number
  })
  default = {
    access_minutes = 60
    id_minutes     = 60
    refresh_days   = 30
  }
  validation {
    condition = (var.cognito_token_validity.access_minutes >= 5 && var.cognito_token_validity.access_minutes <= 1440
      && var.cognito_token_validity.id_minutes >= 5 && var.cognito_token_validity.id_minutes <= 1440
    && var.cognito_token_validity.refresh_days >= 1 && var.cognito_token_validity.refresh_days <= 3650)
    error_message = "access/id tokens live 5-1440 minutes, refresh tokens 1-3650 days."
  }
}

# ------------------------------------------------------------------ runtime settings
variable "operator_parameters" {
  description = "Values of the plain (non-secret) shared parameters whose source is \"operator\" in contracts/ssm-parameters.json, keyed like that file (e.g. \"budget/monthly-limit-usd\")."
  type        = map(string)
  default     = {}
}

variable "operator_secrets" {
  description = "Values of the SecureString parameters whose source is \"operator-secret\" in contracts/ssm-parameters.json (e.g. a Discord webhook URL). Ephemeral: never stored in state; needed again only when secrets_version changes."
  type        = map(string)
  default     = {}
  sensitive   = true
  ephemeral   = true
}
