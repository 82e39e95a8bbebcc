terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Local state by default. Remote state (S3 + DynamoDB lock): backend.s3.hcl.example.
}
