#!/usr/bin/env bash
# Checks what deploy/ ships for Prometheus and Grafana with Prometheus's own tool:
#   1. `promtool check rules` on deploy/prometheus/belay.rules.yml,
#   2. its unit tests, `promtool test rules deploy/prometheus/belay.rules.test.yml`,
#   3. every panel's PromQL in deploy/grafana/belay-dashboard.json parses (each becomes a
#      recording rule of a scratch file that promtool checks; Grafana's `$__rate_interval`
#      and the `$upstream` variable are replaced by what Grafana would put there).
# DeployArtifactsTests checks the rest (metrics exported and documented, the panels' shape).
#
# Needs promtool (Debian package `prometheus`). Without it the check is skipped with a
# warning, unless CI is set (.ci/run installs it): then it fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v promtool >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        echo "error: promtool is missing (apt-get install prometheus)" >&2
        exit 1
    fi
    echo "warning: promtool is missing (apt-get install prometheus): deploy/ not checked" >&2
    exit 0
fi

echo "== deploy/: the alerting rules, their unit tests, the dashboard's PromQL"
promtool check rules deploy/prometheus/belay.rules.yml
(cd deploy/prometheus && promtool test rules belay.rules.test.yml)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 - deploy/grafana/belay-dashboard.json "$scratch/panels.rules.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
rules = []
# Panels, and those inside collapsed rows.
panels = [p for top in dashboard["panels"] for p in [top] + top.get("panels", [])]
for panel in panels:
    for target in panel.get("targets", []):
        if "expr" not in target:
            sys.exit("error: panel %s (%s) has a target without expr" % (panel.get("id"), panel.get("title")))
        expr = target["expr"].replace("$__rate_interval", "2m").replace("$upstream", ".*")
        rules.append({"record": "belay_dashboard:panel_%d_%s" % (panel["id"], target["refId"].lower()), "expr": expr})
if not rules:
    sys.exit("error: the dashboard has no targets")
# JSON is YAML: promtool reads this as a rule file.
json.dump({"groups": [{"name": "belay-dashboard-panels", "rules": rules}]}, open(sys.argv[2], "w"), indent=1)
print("%d panel queries" % len(rules))
PY
promtool check rules "$scratch/panels.rules.yml"
