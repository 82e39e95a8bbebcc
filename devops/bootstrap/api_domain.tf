# ================================================================== custom API domain
# What CloudFormation needs, with the deploy role's credentials, when an environment's
# stack sets ApiDomainName / ApiHostedZoneId (template.yaml): an ACM certificate validated
# by DNS (CloudFormation writes the validation CNAME into the zone), the regional API
# Gateway domain name with its API mapping, and the domain's alias A record. Only the
# environments listed in var.api_domains get this policy, and each only for its own
# domain and zone; the others cannot touch a certificate, a domain name or a zone.

locals {
  # Route 53 compares normalized names: lower case, no trailing dot.
  api_domain = { for e, d in var.api_domains : e => {
    name = lower(trimsuffix(d.domain_name, "."))
    zone = "arn:${local.p}:route53:::hostedzone/${d.hosted_zone_id}"
  } }
}

data "aws_iam_policy_document" "deploy_api_domain" {
  for_each = var.api_domains

  statement {
    sid     = "AcmRequestCertificateHasNoResource"
    actions = ["acm:RequestCertificate"]
    # A certificate has no ARN before it exists: the request must be for this
    # environment's domain only, validated by DNS, tagged with its environment.
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [each.key]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "acm:DomainNames"
      values   = [local.api_domain[each.key].name]
    }
    condition {
      test     = "StringEquals"
      variable = "acm:ValidationMethod"
      values   = ["DNS"]
    }
  }
  statement {
    sid = "AcmCertificateOfThisEnvironment"
    actions = [
      "acm:AddTagsToCertificate",
      "acm:DeleteCertificate",
      "acm:DescribeCertificate",
      "acm:ListTagsForCertificate",
      "acm:RemoveTagsFromCertificate",
      "acm:UpdateCertificateOptions",
    ]
    # Certificate ids are random: the Environment tag the template gives it scopes it.
    resources = ["arn:${local.p}:acm:${local.r}:${local.a}:certificate/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [each.key]
    }
  }
  statement {
    sid     = "ApiGatewayDomainNameAndMapping"
    actions = ["apigateway:DELETE", "apigateway:GET", "apigateway:PATCH", "apigateway:POST", "apigateway:PUT"]
    # POST on the collection creates a domain name; API Gateway serves one only with a
    # certificate for it, which this role can request for its own domain only.
    resources = [
      "arn:${local.p}:apigateway:${local.r}::/domainnames",
      "arn:${local.p}:apigateway:${local.r}::/domainnames/${local.api_domain[each.key].name}",
      "arn:${local.p}:apigateway:${local.r}::/domainnames/${local.api_domain[each.key].name}/apimappings",
      "arn:${local.p}:apigateway:${local.r}::/domainnames/${local.api_domain[each.key].name}/apimappings/*",
    ]
  }
  statement {
    # API Gateway creates its service-linked role with the account's first custom domain.
    sid       = "ApiGatewayServiceLinkedRoleOnFirstDomain"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.p}:iam::${local.a}:role/aws-service-role/ops.apigateway.amazonaws.com/AWSServiceRoleForAPIGateway"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["ops.apigateway.amazonaws.com"]
    }
  }
  statement {
    sid     = "Route53RecordsOfTheApiDomain"
    actions = ["route53:ChangeResourceRecordSets"]
    # The alias A record of the domain and ACM's validation CNAME (_<token>.<domain>).
    resources = [local.api_domain[each.key].zone]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = [local.api_domain[each.key].name, "_*.${local.api_domain[each.key].name}"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsRecordTypes"
      values   = ["A", "CNAME"]
    }
  }
  statement {
    sid       = "Route53ReadTheHostedZone"
    actions   = ["route53:GetHostedZone", "route53:ListResourceRecordSets"]
    resources = [local.api_domain[each.key].zone]
  }
  statement {
    sid     = "Route53ChangeStatus"
    actions = ["route53:GetChange"]
    # Change ids are random; reading a change's status (PENDING/INSYNC) reveals nothing.
    resources = ["arn:${local.p}:route53:::change/*"]
  }
}

resource "aws_iam_policy" "deploy_api_domain" {
  for_each = var.api_domains

  name        = "${local.deploy_role_names[each.key]}-api-domain"
  description = "scripts/deploy.sh ${each.key}: the custom API domain ${local.api_domain[each.key].name} (certificate, domain name, DNS records)"
  policy      = data.aws_iam_policy_document.deploy_api_domain[each.key].json
}

resource "aws_iam_role_policy_attachment" "deploy_api_domain" {
  for_each = var.api_domains

  role       = aws_iam_role.github[local.deploy_role_names[each.key]].name
  policy_arn = aws_iam_policy.deploy_api_domain[each.key].arn
}
