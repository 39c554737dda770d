#!/usr/bin/env bash
# Regenerate the gRPC code from companion_ws/grpc/companion.proto (a copy of the
# protocol's companion.proto). The generated modules are committed, so running the hub
# needs only grpcio; this script needs grpcio-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
out=companion_ws/grpc/v1
"$PYTHON" -m grpc_tools.protoc -I companion_ws/grpc --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" companion_ws/grpc/companion.proto
# protoc writes an absolute import of the sibling module; make it package-relative.
sed -i 's/^import companion_pb2 as companion__pb2/from . import companion_pb2 as companion__pb2/' \
  "$out/companion_pb2_grpc.py"
echo "generated $out/companion_pb2.py, companion_pb2.pyi, companion_pb2_grpc.py"
