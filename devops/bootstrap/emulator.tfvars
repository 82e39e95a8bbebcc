# Inputs for applying devops/bootstrap to the moto emulator (scripts/check-infra.sh
# emulator, scripts/deploy.sh rehearsal). Not for a real account.
github_repository = "encache-emulator/encache"

# Throwaway: let destroy remove the state bucket with its object versions.
state_bucket_force_destroy = true
