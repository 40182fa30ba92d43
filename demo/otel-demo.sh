#!/usr/bin/env sh
# Run the official OpenTelemetry demo (pinned release) with its collector feeding otel-ai.
#
#   demo/otel-demo.sh up        start otel-ai (docker-compose.yml), then the demo
#   demo/otel-demo.sh down      stop the demo (otel-ai keeps running: `docker compose down`)
#   demo/otel-demo.sh ps|logs   pass-through to docker compose for the demo project
#
#   OTEL_AI_ENCODING=json demo/otel-demo.sh up    the daemon receives OTLP/HTTP JSON
#   OTEL_DEMO_VERSION=2.0.2                       the demo release to check out (git tag)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
VERSION=${OTEL_DEMO_VERSION:-2.0.2}
CHECKOUT="$HERE/opentelemetry-demo"
ENCODING=${OTEL_AI_ENCODING:-proto}
export OTEL_AI_ENCODING="$ENCODING"

case "$ENCODING" in proto|json) ;; *) echo "OTEL_AI_ENCODING must be proto or json, not '$ENCODING'" >&2; exit 2;; esac

fetch() {
    if [ ! -d "$CHECKOUT/.git" ]; then
        git clone --depth 1 --branch "$VERSION" https://github.com/open-telemetry/opentelemetry-demo.git "$CHECKOUT"
    fi
    have=$(git -C "$CHECKOUT" describe --tags --exact-match 2>/dev/null || echo unknown)
    if [ "$have" != "$VERSION" ]; then
        echo "demo/opentelemetry-demo is at '$have', not $VERSION: remove it to re-fetch" >&2
        exit 2
    fi
}

compose_file() {
    for f in docker-compose.yml compose.yaml compose.yml; do
        if [ -f "$CHECKOUT/$f" ]; then echo "$CHECKOUT/$f"; return; fi
    done
    echo "no compose file in $CHECKOUT" >&2
    exit 2
}

demo() {
    json=""
    if [ "$ENCODING" = json ]; then json="-f $HERE/otel-demo.json.yml"; fi
    # shellcheck disable=SC2086
    docker compose -p otel-demo --project-directory "$CHECKOUT" \
        --env-file "$CHECKOUT/.env" --env-file "$HERE/otel-demo.env" \
        -f "$(compose_file)" -f "$HERE/otel-demo.override.yml" $json "$@"
}

cmd=${1:-up}
shift || true
case "$cmd" in
    up)
        fetch
        (cd "$ROOT" && docker compose up -d --wait clickhouse otel-ai)
        demo up -d "$@"
        echo "shop: http://localhost:8080  flags: http://localhost:8080/feature  otel-ai: http://localhost:8700/api/v1/services"
        ;;
    down) demo down "$@" ;;
    *) demo "$cmd" "$@" ;;
esac
