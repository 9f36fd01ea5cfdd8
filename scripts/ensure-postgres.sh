#!/usr/bin/env bash
# Make a PostgreSQL server available on 127.0.0.1 for the store tests, then print its URL.
#
# Idempotent: installs Debian's `postgresql` with apt-get only when it is absent (needs
# root), creates the cluster if missing, listens on loopback only, starts it when it is
# down, and creates the test role and database when they do not exist.
#
# The URL printed on stdout (progress goes to stderr) is the one the tests use by
# default; override it with PHANTOM_AUCTION_TEST_PG_URL:
#   postgresql+asyncpg://phantom_auction:phantom_auction@127.0.0.1:5432/phantom_auction_test
set -euo pipefail

PG_USER=phantom_auction
PG_PASSWORD=phantom_auction
PG_DB=phantom_auction_test
CLUSTER=main

say() { echo "ensure-postgres: $*" >&2; }

as_postgres() {
    if command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is not installed and this is not root: cannot apt-get install postgresql"
        exit 1
    fi
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

VERSION=$(ls -1 /usr/lib/postgresql | sort -V | tail -n 1)
if [ "$(id -u)" != 0 ]; then
    say "not root: assuming a cluster is already running"
else
    if [ ! -d "/etc/postgresql/$VERSION/$CLUSTER" ]; then
        say "creating cluster $VERSION/$CLUSTER"
        pg_createcluster "$VERSION" "$CLUSTER" >&2
    fi
    CONF_D="/etc/postgresql/$VERSION/$CLUSTER/conf.d"
    mkdir -p "$CONF_D"
    LOOPBACK_CONF="$CONF_D/phantom-auction.conf"
    if [ ! -f "$LOOPBACK_CONF" ]; then
        echo "listen_addresses = '127.0.0.1'" >"$LOOPBACK_CONF"
    fi
    if ! pg_lsclusters -h "$VERSION" "$CLUSTER" | grep -q online; then
        say "starting cluster $VERSION/$CLUSTER"
        pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
    fi
fi

PORT=$(pg_lsclusters -h "$VERSION" "$CLUSTER" | awk '{print $3}')
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
        break
    fi
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || { say "server on 127.0.0.1:$PORT is not ready"; exit 1; }

if [ "$(id -u)" = 0 ]; then
    as_postgres psql -q -p "$PORT" -v ON_ERROR_STOP=1 >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
        CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD';
    END IF;
END
\$\$;
SQL
    if ! as_postgres psql -p "$PORT" -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
        say "creating database $PG_DB"
        as_postgres createdb -p "$PORT" -O "$PG_USER" "$PG_DB" >&2
    fi
fi

echo "postgresql+asyncpg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PORT/$PG_DB"
