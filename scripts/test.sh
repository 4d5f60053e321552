#!/usr/bin/env bash
# Runs every test, as the README and .ci/run do.
#
# 1. Builds everything first: the tests that drive the real `belay` binary (crash, restart,
#    exit codes) are skipped when it is older than the sources, and `swift test` alone does
#    not rebuild executables.
# 2. Every test but those that start processes, in parallel.
# 3. deploy/'s Prometheus rules (and their unit tests) and the Grafana dashboard's PromQL,
#    through promtool (scripts/check-deploy.sh; skipped with a warning without promtool).
#    The management API against its OpenAPI document: openapi-spec-validator, then
#    schemathesis against a running gateway (scripts/check-contract.sh; skipped with a
#    warning without them, an error under CI).
# 4. The tests that start processes last, one at a time:
#    - the crash tests run several real gateways, a load of 32 clients and (on PostgreSQL)
#      a database; on 2 cores that load, beside the tests that time real sockets against
#      short timeouts, made those fail for want of CPU, not of correctness;
#    - Foundation's Process.run() on Linux over-reads the entries of /proc/self/fd
#      (swift-corelibs-foundation #5472) and crashed the whole test process (SIGSEGV)
#      once the parallel tests held about a thousand descriptors. Alone, a test holds few.
#
# The PostgreSQL tests run when the POSTGRES_* variables name a server
# (`eval "$(scripts/pg-cluster.sh start)"` starts a throwaway one). While working on one
# part, `swift test --filter Name` is quicker.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every suite that starts a process (Foundation's Process): keep it whole when adding one.
# HedgingGatewayTests and CapacityGatewayTests join them: they compare latencies and how
# much gets through at once, which the parallel tests would blur.
spawning='DeliveryCrashTests|SharedDatabaseCrashTests|CommandLineTests|StorageCopyCommandTests|StorageBackupCommandTests|HelpTextTests|StatusPageTests|PostgresTLSTests|GracefulStopTests|HedgingGatewayTests|CapacityGatewayTests'
swift build --build-tests
status=0
swift test --skip-build --skip "$spawning" || status=$?
scripts/check-deploy.sh || status=$?
scripts/check-contract.sh || status=$?
SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=1 swift test --skip-build --filter "$spawning" || status=$?
exit $status
