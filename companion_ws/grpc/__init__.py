"""The gRPC API (docs/protocol.md section 15): ``companion.v1.Sessions`` served in the hub
process. The code in ``v1/`` is generated from ``companion.proto`` by
``scripts/gen_grpc.sh`` and committed."""
