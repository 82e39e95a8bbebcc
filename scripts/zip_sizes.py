#!/usr/bin/env python3
"""The zip Lambda receives for every function, and its size budget.

Zips each `sam build` artifact directory (.aws-sam/build/<LogicalId>/) the way `sam
deploy` packages it (zipfile, ZIP_DEFLATED at the default level: samcli's make_zip) and
compares the size with the function's budget in scripts/zip-budgets.txt.

  scripts/zip_sizes.py [--check] [--tsv] [BUILD_DIR]

--check  exit 1 naming each function over its budget (scripts/build.sh runs this)
--tsv    LogicalId, bootstrap bytes, zip bytes, budget bytes; for `encache-local bench`
"""
import io
import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGETS = os.path.join(ROOT, "scripts", "zip-budgets.txt")


def budgets():
    table = {}
    with open(BUDGETS) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, kib = line.split()[:2]
                table[name] = int(kib) * 1024
    if "*" not in table:
        sys.exit(f"{BUDGETS}: no default budget ('*')")
    return table


def zipped_size(artifact_dir):
    """Bytes of the zip sam deploy would upload for this artifact directory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for base, _dirs, files in sorted(os.walk(artifact_dir)):
            for name in sorted(files):
                path = os.path.join(base, name)
                zf.write(path, os.path.relpath(path, artifact_dir))
    return len(buf.getvalue())


def main(argv):
    check = "--check" in argv
    tsv = "--tsv" in argv
    args = [a for a in argv if not a.startswith("--")]
    build_dir = args[0] if args else os.path.join(ROOT, ".aws-sam", "build")
    if not os.path.isdir(build_dir):
        sys.exit(f"{build_dir} does not exist: run scripts/build.sh first")
    table = budgets()
    over = []
    rows = []
    for logical_id in sorted(os.listdir(build_dir)):
        artifact = os.path.join(build_dir, logical_id)
        bootstrap = os.path.join(artifact, "bootstrap")
        if not os.path.isfile(bootstrap):
            continue
        size = zipped_size(artifact)
        budget = table.get(logical_id, table["*"])
        rows.append((logical_id, os.path.getsize(bootstrap), size, budget))
        if size > budget:
            over.append(logical_id)
    if not rows:
        sys.exit(f"no function artifact (bootstrap) under {build_dir}")
    mib = lambda n: f"{n / 1048576:.2f} MiB"
    for logical_id, raw, size, budget in rows:
        if tsv:
            print(f"{logical_id}\t{raw}\t{size}\t{budget}")
        else:
            mark = "OVER" if size > budget else "ok"
            print(f"{mark:4}  {logical_id:28} bootstrap {mib(raw):>10}  zip {mib(size):>10}  budget {mib(budget)}")
    if check and over:
        print(f"over budget: {', '.join(over)} (scripts/zip-budgets.txt)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
