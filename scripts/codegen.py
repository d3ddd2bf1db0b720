"""Regenerate the protobuf/gRPC Python code from protos/ (needs grpcio-tools).

    python scripts/codegen.py          # write service/api/
    python scripts/codegen.py --check  # fail if the committed code differs (CI)

A development tool: it works in a checkout (it needs protos/), so it lives here and not
in the installed package. The generated modules import each other as `nextword.v1...`; they live in the package
`service.api`, so their imports are rewritten to that path.
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "service" / "api"
PACKAGE = "service.api"


def generate(out: Path) -> None:
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = ["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    for py in out.rglob("*.py*"):
        py.write_text(py.read_text().replace("from nextword.v1 import", f"from {PACKAGE}.nextword.v1 import"))
    for d in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed code instead of writing it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        if args.check:
            if not OUT.exists() or not same_tree(Path(tmp), OUT):
                print("service/api is out of date with protos/: run python scripts/codegen.py", file=sys.stderr)
                return 1
            print("service/api matches protos/")
            return 0
        shutil.rmtree(OUT, ignore_errors=True)
        shutil.copytree(tmp, OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
