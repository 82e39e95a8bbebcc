# Inputs for applying devops/bootstrap to the moto emulator (scripts/check-infra.sh
# emulator, scripts/deploy.sh rehearsal). Not for a real account.
github_repository = "encache-emulator/encache"

# Throwaway: let destroy remove the state bucket with its object versions.
state_bucket_force_destroy = true

# Two environments with a custom API domain (the same zone, as an account often has), so
# scripts/check-bootstrap.py checks the domain policies and that neither reaches the
# other's domain.
api_domains = {
  stage = { domain_name = "api.stage.encache-emulator.test", hosted_zone_id = "Z0EMULATORZONE" }
  prod  = { domain_name = "api.encache-emulator.test", hosted_zone_id = "Z0EMULATORZONE" }
}
