# Inputs for the apply -> plan -> destroy check against the moto emulator
# (scripts/check-infra.sh emulator). Not for a real account.
env        = "dev"
aws_region = "us-east-1"

# What the emulator cannot apply faithfully: moto never reports the bastion's detailed
# monitoring as enabled (Terraform's waiter hangs) and gives every default-subnet instance
# a public IP (so every plan would replace the bastion).
enable_bastion = false

# Throwaway: let destroy remove everything.
db_deletion_protection = false
db_skip_final_snapshot = true
ecr_force_delete       = true

cognito_allow_password_auth = true

# moto neither stores parameter-group settings nor the Cognito feature plan, so these
# would show as changes on every plan (rds.force_ssl is set whatever db_parameters says:
# scripts/check-infra.sh knows moto drops it).
db_parameters          = {}
cognito_user_pool_tier = null
