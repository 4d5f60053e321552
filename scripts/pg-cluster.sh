#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster on 127.0.0.1 for tests and benchmarks, as the
# `postgres` user (PostgreSQL refuses to run as root), and prints the variables the store
# tests read (postgres-nio's own names) as `export` lines:
#
#   eval "$(scripts/pg-cluster.sh start)"    # POSTGRES_HOSTNAME, _PORT, _USER, _PASSWORD, _DB
#   scripts/pg-cluster.sh stop                # stops it and deletes its folder
#
# The cluster lives in $BELAY_PG_DIR (default /tmp/belay-pg) and listens on $BELAY_PG_PORT
# (default: the first free port from 55432). Password authentication (scram-sha-256) for
# the `belay` role, so the tests exercise what production uses.
set -euo pipefail

dir=${BELAY_PG_DIR:-/tmp/belay-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "error: no PostgreSQL server (apt-get install postgresql)" >&2; exit 1; }
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    if [ -f "$dir/port" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        port=$(cat "$dir/port")
    else
        rm -rf "$dir"
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres "$dir"
        port=${BELAY_PG_PORT:-55432}
        while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
        echo belay-test >"$dir/pwfile"
        as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --pwfile="$dir/pwfile" -E UTF8 >"$dir/initdb.log" 2>&1
        cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 256MB
synchronous_commit = on
fsync = on
CONF
        as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
        as_postgres psql -h "$dir" -p "$port" -U postgres -q \
            -c "CREATE ROLE belay LOGIN PASSWORD 'belay-test'" -c "CREATE DATABASE belay OWNER belay" >/dev/null
        echo "$port" >"$dir/port"
    fi
    echo "export POSTGRES_HOSTNAME=127.0.0.1 POSTGRES_PORT=$port POSTGRES_USER=belay"
    echo "export POSTGRES_PASSWORD=belay-test POSTGRES_DB=belay"
    ;;
stop)
    [ -d "$dir/data" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
