#!/usr/bin/env bash
# Regenerates src/tock/_gen from proto/tock/handler/v1/handler.proto.
#
#   sdk-python/scripts/generate.sh [python]
#
# Run from anywhere; paths are resolved from this script's location. The interpreter is the
# argument, else $PYTHON, else the repository's .venv, else python3; it must have the
# grpcio-tools version pinned in requirements-dev.txt, so that every run gives the same files.
set -euo pipefail

sdk_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_dir="$(cd "${sdk_dir}/.." && pwd)"
out_dir="${sdk_dir}/src/tock/_gen"

python="${1:-${PYTHON:-}}"
if [[ -z "${python}" ]]; then
  if [[ -x "${repo_dir}/.venv/bin/python" ]]; then
    python="${repo_dir}/.venv/bin/python"
  else
    python="python3"
  fi
fi

want="$(sed -n 's/^grpcio-tools==\([^[:space:]]*\).*/\1/p' "${sdk_dir}/requirements-dev.txt")"
have="$("${python}" -c 'from importlib.metadata import version; print(version("grpcio-tools"))' 2>/dev/null || true)"
if [[ "${have}" != "${want}" ]]; then
  echo "generate.sh: need grpcio-tools==${want}, found '${have:-none}' for ${python}" >&2
  echo "  install it with: ${python} -m pip install -r sdk-python/requirements-dev.txt" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

# protoc names files after their proto path relative to -I; running it from the repository
# root with a relative -I keeps this machine's paths out of the output.
(
  cd "${repo_dir}"
  "${python}" -m grpc_tools.protoc \
    -I proto \
    --python_out="${tmp}" \
    --pyi_out="${tmp}" \
    --grpc_python_out="${tmp}" \
    tock/handler/v1/handler.proto
)

gen="${tmp}/tock/handler/v1"
# Two fixes to protoc's output, checked so that a newer protoc cannot skip them silently:
# - the gRPC module imports its messages by their proto package; inside tock._gen the
#   messages module is a sibling;
# - the stub annotates Timestamp fields with datetime.datetime but does not import datetime.
"${python}" - "${gen}" <<'PY'
import pathlib
import re
import sys

gen = pathlib.Path(sys.argv[1])

grpc_py = gen / "handler_pb2_grpc.py"
text, n = re.subn(
    r"^from tock\.handler\.v1 import handler_pb2 as ",
    "from . import handler_pb2 as ",
    grpc_py.read_text(),
    flags=re.M,
)
if n != 1:
    sys.exit("generate.sh: the import rewrite in handler_pb2_grpc.py did not apply")
grpc_py.write_text(text)

stub = gen / "handler_pb2.pyi"
text = stub.read_text()
if "datetime.datetime" in text and not re.search(r"^import datetime$", text, flags=re.M):
    text = "import datetime\n" + text
stub.write_text(text)
PY

mkdir -p "${out_dir}"
rm -f "${out_dir}"/handler_pb2*.py "${out_dir}"/handler_pb2*.pyi
cp "${gen}/handler_pb2.py" "${gen}/handler_pb2.pyi" "${gen}/handler_pb2_grpc.py" "${out_dir}/"
cat > "${out_dir}/__init__.py" <<'PY'
"""Code generated from proto/tock/handler/v1/handler.proto by scripts/generate.sh. DO NOT EDIT.

Private to the SDK: the public API speaks dataclasses, never these types.
"""
PY
echo "generated ${out_dir#"${repo_dir}/"}"
