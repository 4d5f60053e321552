#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster on 127.0.0.1 for tests and benchmarks, as the
# `postgres` user (PostgreSQL refuses to run as root), and prints the variables the store
# tests read (postgres-nio's own names) as `export` lines:
#
#   eval "$(scripts/pg-cluster.sh start)"    # POSTGRES_HOSTNAME, _PORT, _USER, _PASSWORD, _DB,
#                                             # and POSTGRES_SSLROOTCERT (the test CA's PEM)
#   scripts/pg-cluster.sh stop                # stops it and deletes its folder
#
# The cluster lives in $BELAY_PG_DIR (default /tmp/belay-pg) and listens on $BELAY_PG_PORT
# (default: the first free port from 55432). Password authentication (scram-sha-256) for
# the `belay` role, so the tests exercise what production uses. TLS is on, optional for
# clients (pg_hba's `host` lines take connections with and without it): at start openssl
# makes a throwaway CA (ca.pem; its key is deleted once it has signed) and a server
# certificate it signs for 127.0.0.1 and localhost (server.crt, server.key), in the folder.
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
        # A throwaway CA and a server certificate it signs (P-256, 30 days), for sslmode=verify-full
        # to 127.0.0.1 or localhost. The CA's key is deleted once it has signed: nothing else is signed.
        tls() {
            openssl "$@" >>"$dir/openssl.log" 2>&1 || {
                echo "error: openssl $1 failed:" >&2
                cat "$dir/openssl.log" >&2
                exit 1
            }
        }
        tls req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
            -subj "/CN=Belay test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        tls req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$dir/server.key" -out "$dir/server.csr"
        printf '%s\n' "subjectAltName = IP:127.0.0.1, DNS:localhost" "basicConstraints = critical, CA:FALSE" \
            "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" >"$dir/server.ext"
        tls x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -days 30 \
            -set_serial "0x$(openssl rand -hex 8)" -extfile "$dir/server.ext" -out "$dir/server.crt"
        rm -f "$dir/ca.key" "$dir/server.csr" "$dir/server.ext"
        chmod 0644 "$dir/ca.pem" "$dir/server.crt"
        chmod 0600 "$dir/server.key"
        [ "$(id -u)" = 0 ] && chown postgres "$dir/server.key" "$dir/server.crt"
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
ssl = on
ssl_cert_file = '$dir/server.crt'
ssl_key_file = '$dir/server.key'
CONF
        as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
        as_postgres psql -h "$dir" -p "$port" -U postgres -q \
            -c "CREATE ROLE belay LOGIN PASSWORD 'belay-test'" -c "CREATE DATABASE belay OWNER belay" >/dev/null
        echo "$port" >"$dir/port"
    fi
    echo "export POSTGRES_HOSTNAME=127.0.0.1 POSTGRES_PORT=$port POSTGRES_USER=belay"
    echo "export POSTGRES_PASSWORD=belay-test POSTGRES_DB=belay"
    # (A cluster an older version of this script started has no TLS, nor the variable.)
    if [ -f "$dir/ca.pem" ]; then echo "export POSTGRES_SSLROOTCERT=$dir/ca.pem"; fi
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
