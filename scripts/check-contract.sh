#!/usr/bin/env bash
# Checks the management API against its OpenAPI document with tools nobody here wrote:
#
# 1. openapi-spec-validator on Sources/BelayGateway/Contract/openapi.yaml (the document the
#    binary compiles in and serves at GET /v1/openapi.yaml).
# 2. schemathesis against a real gateway (.build/debug/belay serve) on 127.0.0.1, with every
#    check, its examples, coverage and fuzzing phases, a bounded number of cases per
#    operation: no 5xx, every answer conforming to the document, invalid input refused,
#    valid input taken, authentication enforced. The gateway has an admin consumer, one
#    unreachable upstream, a webhook source, and a little history first (a delivery, a
#    proxied call, a webhook event, an ended drill), so the lists are not empty.
#
# Run by scripts/test.sh after the build. Without the tools it warns and skips, except
# under CI (CI=true), where a missing tool is an error. SCHEMATHESIS_MAX_EXAMPLES (default
# 30) bounds the cases per operation; the whole check takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

document=Sources/BelayGateway/Contract/openapi.yaml
missing=()
command -v openapi-spec-validator >/dev/null 2>&1 || missing+=(openapi-spec-validator)
command -v st >/dev/null 2>&1 || missing+=(schemathesis)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${CI:-}" = true ]; then
        echo "error: check-contract needs ${missing[*]} (pip install openapi-spec-validator schemathesis)" >&2
        exit 1
    fi
    echo "warning: skipping the contract check: ${missing[*]} not installed (pip install openapi-spec-validator schemathesis)" >&2
    exit 0
fi

echo "== the OpenAPI document validates (openapi-spec-validator)"
openapi-spec-validator "$document"

belay=.build/debug/belay
[ -x "$belay" ] || { echo "error: $belay is not built (swift build)" >&2; exit 1; }

work=$(mktemp -d /tmp/belay-contract.XXXXXX)
gateway_pid=
cleanup() {
    [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

admin_key=contract-admin-key
admin_sha=$(printf '%s' "$admin_key" | openssl dgst -sha256 -r | cut -d' ' -f1)
shop_secret=contract-shop-secret
# A free port: bind 0, read it back, let it go.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat >"$work/belay.yaml" <<EOF
server: { listen: "127.0.0.1:$port" }
storage: { url: "sqlite:$work/belay.db" }
consumers:
  operator: { key_sha256: "$admin_sha", scopes: ["admin"] }
upstreams:
  pay:
    endpoints: ["http://127.0.0.1:9"]   # discard: nothing listens, every call is unreachable
    timeouts: { connect: 200ms, attempt: 500ms, total: 1s }
    retry: { max_attempts: 1 }
webhooks:
  shop:
    verify: { scheme: hmac, secret: "$shop_secret", header: X-Shop-Hmac, id_header: X-Shop-Id }
    forward_to: "http://127.0.0.1:9/hooks/shop"
audit: { enabled: true }
EOF

"$belay" serve --config "$work/belay.yaml" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log" >&2; exit 1; }
    sleep 0.1
done

echo "== a little history for the lists: a delivery, a proxied call, a webhook event, a drill"
auth=(-H "Authorization: Bearer $admin_key")
curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -H 'Idempotency-Key: contract-1' \
    -d '{"upstream":"pay","method":"POST","path":"/v1/charges","body":{"amount":100}}' \
    "$base/v1/deliveries" >/dev/null
curl -sS -o /dev/null "${auth[@]}" "$base/proxy/pay/v1/balance"
event='{"id":"evt_1","type":"order.paid"}'
signature=$(printf '%s' "$event" | openssl dgst -sha256 -hmac "$shop_secret" -r | cut -d' ' -f1)
curl -fsS -H 'Content-Type: application/json' -H "X-Shop-Hmac: $signature" -H 'X-Shop-Id: evt_1' \
    -d "$event" "$base/webhooks/shop" >/dev/null
curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -d '{"kind":"outage","duration":"1s"}' \
    "$base/v1/upstreams/pay/faults" >/dev/null
curl -fsS "${auth[@]}" -X DELETE "$base/v1/upstreams/pay/faults" >/dev/null

echo "== schemathesis against the gateway (all checks, ${SCHEMATHESIS_MAX_EXAMPLES:-30} cases per operation)"
status=0
# From the scratch folder: schemathesis keeps a cache in the folder it runs in.
(cd "$work" && st --no-color run "$base/v1/openapi.yaml" \
    --checks all \
    --phases examples,coverage,fuzzing \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
    --header "Authorization: Bearer $admin_key" \
    --workers 1 \
    --request-timeout 10 \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --generation-database none \
    --report-dir "$work/report") || status=$?
if [ $status -ne 0 ]; then
    echo "--- the gateway's log (last 40 lines)" >&2
    tail -n 40 "$work/gateway.log" >&2
fi
exit $status
