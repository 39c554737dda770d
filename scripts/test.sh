#!/usr/bin/env bash
# Set up and run the whole test suite, as a newcomer or CI would on a fresh machine:
# system packages, PostgreSQL, Redis and NATS JetStream (started if not answering), the
# venv, then ruff, mypy, the page's JavaScript tests (node --test) and pytest. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
# npm builds the JavaScript packages (packages/) and the React example.
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
# tests/integration/test_nginx.py runs docs/nginx.conf (Debian puts nginx in /usr/sbin).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

# A three-master Redis Cluster with append-only files (docs/protocol.md section 18);
# the tests find it through COMPANION_TEST_REDIS_CLUSTER (this default).
if ! redis-cli -h 127.0.0.1 -p 7001 cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
  log "starting a Redis Cluster on 7001-7003"
  bash scripts/redis_cluster.sh "${TMPDIR:-/tmp}/companion-redis-cluster" 7001 7002 7003
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  log "starting NATS with JetStream"
  as_root mkdir -p /var/lib/nats-server
  as_root sh -c 'nats-server -js -a 127.0.0.1 -p 4222 -sd /var/lib/nats-server \
    >/var/log/nats-server-ci.log 2>&1 &'
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 1; done
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
log "installing companion-ws with its test dependencies"
# uv installs the same packages from the same registries as pip, in a tenth of the
# time: a fresh clone's venv in about 15 s instead of 90.
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install -q 'uv>=0.9'
fi
install() { .venv/bin/uv pip install --quiet --python .venv/bin/python "$@"; }
# The Pipecat adapter's tests need pipecat-ai, which pins protobuf<7 while the hub needs
# protobuf>=7.35.1 (no extra can hold both: docs/pipecat.md). Installed first, so the
# hub's own install below brings protobuf back up (pipecat runs on it; its tests say so).
if ! .venv/bin/python -c 'import importlib.metadata as m; assert m.version("pipecat-ai") == "1.14.0"' 2>/dev/null; then
  log "installing pipecat-ai 1.14.0"
  install 'pipecat-ai==1.14.0'
fi
install -e '.[test]'

log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "mypy"
# Its cache outside the clone: mypy trusts a cached module whose source hashes the same,
# so a fresh clone checks in seconds what it would check in a minute.
MYPY_CACHE_DIR=${MYPY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/companion-ws/mypy} \
  .venv/bin/mypy companion_ws ui_state tests
log "the JavaScript packages (npm ci, tsc --strict, their tests)"
# packages/client (@companion-ws/client): the page imports its build, vendored under
# static/vendor/companion-client/; packages/react (@companion-ws/react) uses the client
# through a file: link, so the client builds first. npm ci only when a lockfile changed.
for pkg in packages/client packages/react; do
  if [ ! -f "$pkg/node_modules/.package-lock.json" ] \
    || [ "$pkg/package-lock.json" -nt "$pkg/node_modules/.package-lock.json" ]; then
    (cd "$pkg" && npm ci --no-audit --no-fund --silent)
  fi
  (cd "$pkg" && npm test --silent)
done
log "examples/react-companion (npm ci && npm run build; tests/e2e/test_react_example.py runs it)"
if [ ! -f examples/react-companion/node_modules/.package-lock.json ] \
  || [ examples/react-companion/package-lock.json -nt examples/react-companion/node_modules/.package-lock.json ]; then
  (cd examples/react-companion && npm ci --no-audit --no-fund --silent)
fi
(cd examples/react-companion && npm run build --silent >/dev/null)
log "node --test (the page's modules, on the vendored client)"
node --test tests/js/
log "pytest"
# Most tests wait on a hub, a database or a browser rather than on the CPU: several
# workers (pytest-xdist) overlap those waits. A module stays on one worker (--dist
# loadfile), so its module-scoped hub starts once. The slowest tests are listed at the
# end. PYTEST_WORKERS=0 runs in one process.
workers=${PYTEST_WORKERS:-4}
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest --durations=25 "$@"
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile --durations=25 "$@"
