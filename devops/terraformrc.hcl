# Terraform CLI configuration for encache: providers come only from the local mirror
# (/opt/tf-plugins), never from the network. Use it with
#   export TF_CLI_CONFIG_FILE="$PWD/devops/terraformrc.hcl"
# (scripts/check-infra.sh and scripts/deploy.sh set it themselves).
provider_installation {
  filesystem_mirror {
    path    = "/opt/tf-plugins"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["*/*/*"]
  }
}
