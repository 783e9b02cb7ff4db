#!/usr/bin/env bash
# A PostgreSQL server on 127.0.0.1 for the store tests (crates/whereis/tests/store.rs), from Debian's
# package. Idempotent: installs `postgresql` only when missing, starts the cluster only when down,
# creates the role and the database only when absent. Run as root (or with sudo available).
#
#   eval "$(bash .ci/postgres.sh | tail -1)"      # sets WHEREIS_TEST_POSTGRES_URL
#
# Progress goes to stderr; the last line on stdout is the `export` to evaluate.
set -euo pipefail

ROLE=whereis
PASSWORD=whereis
DATABASE=whereis_test

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
    as_root() { sudo "$@"; }
else
    die "run as root (apt-get and pg_ctlcluster need it)"
fi
export DEBIAN_FRONTEND=noninteractive

server_installed() {
    command -v pg_lsclusters >/dev/null 2>&1 && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

if ! server_installed; then
    log "installing the postgresql package"
    # Try the package lists already on the machine first; refresh them only when that fails.
    if ! as_root apt-get install -y -q --no-install-recommends postgresql >&2; then
        as_root apt-get update -q >&2
        as_root apt-get install -y -q --no-install-recommends postgresql >&2
    fi
    server_installed || die "the postgresql package did not install a server"
fi

# The newest installed major version, and its cluster (the package creates "main"; create it if not).
version=$(for server in /usr/lib/postgresql/*/bin/postgres; do
    basename "$(dirname "$(dirname "$server")")"
done | sort -V | tail -1)
cluster=main
if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
    log "creating cluster $version/$cluster"
    as_root pg_createcluster --encoding UTF8 --locale C.UTF-8 "$version" "$cluster" >&2 \
        || as_root pg_createcluster --encoding UTF8 --locale C "$version" "$cluster" >&2
fi

online() {
    pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c && $4 == "online" { found = 1 } END { exit !found }'
}

# Loopback only: a drop-in in the cluster's conf.d (included last by Debian's postgresql.conf).
confdir=/etc/postgresql/$version/$cluster
dropin=$confdir/conf.d/whereis-tests.conf
want="listen_addresses = '127.0.0.1'"
if [ "$(cat "$dropin" 2>/dev/null || true)" != "$want" ]; then
    log "$dropin: $want"
    as_root mkdir -p "$confdir/conf.d"
    printf '%s\n' "$want" | as_root tee "$dropin" >/dev/null
    if ! grep -Eq "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf.d'" "$confdir/postgresql.conf"; then
        printf "include_dir = 'conf.d'\n" | as_root tee -a "$confdir/postgresql.conf" >/dev/null
    fi
    if online; then
        as_root pg_ctlcluster "$version" "$cluster" restart >&2
    fi
fi
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }')

if ! online; then
    log "starting cluster $version/$cluster on 127.0.0.1:$port"
    as_root pg_ctlcluster "$version" "$cluster" start >&2 || {
        log "pg_ctlcluster failed; trying the service"
        as_root service postgresql start >&2
    }
fi
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || die "the server does not accept connections on 127.0.0.1:$port"

# As the postgres superuser, over the Unix socket (peer authentication).
psql_admin() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"
    else
        sudo -u postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"
    fi
}

psql_admin >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
SQL
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != "1" ]; then
    log "creating database $DATABASE"
    psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >&2
fi
# Databases left behind by test runs that were killed (each test creates whereis_t_…); those in
# use belong to tests running now and are left alone.
for leftover in $(psql_admin -tAc "SELECT datname FROM pg_database d WHERE datname LIKE 'whereis\\_t\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)"); do
    psql_admin -c "DROP DATABASE IF EXISTS \"$leftover\"" >&2 || true
done

url="postgres://$ROLE:$PASSWORD@127.0.0.1:$port/$DATABASE"
PGPASSWORD=$PASSWORD psql -X -q -h 127.0.0.1 -p "$port" -U "$ROLE" -d "$DATABASE" -tAc 'SELECT 1' >/dev/null \
    || die "cannot log in as $ROLE on 127.0.0.1:$port"
log "ready: PostgreSQL $version on 127.0.0.1:$port, database $DATABASE"
echo "export WHEREIS_TEST_POSTGRES_URL=$url"
