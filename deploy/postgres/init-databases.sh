#!/usr/bin/env bash
# Creates one database and one login role per Meridian service, each role owning
# only its own database, which no other role may connect to. The postgres image
# runs this once, when it initialises an empty data directory (a new volume);
# it is safe to run again, by hand, against a server that already has them.
#
# Environment (docker-compose.yml sets the passwords; the image sets the rest):
#   POSTGRES_USER, POSTGRES_DB            the superuser and database to connect as
#   USER_SERVICE_DB_PASSWORD, ORDER_SERVICE_DB_PASSWORD, PAYMENT_SERVICE_DB_PASSWORD
set -euo pipefail

create_service_database() {
  local name=$1 password=$2
  psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
-- By default every role may connect to every database; a service sees only its own.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
  echo "init-databases: database and role ${name} ready"
}

create_service_database user_service "${USER_SERVICE_DB_PASSWORD:?set USER_SERVICE_DB_PASSWORD}"
create_service_database order_service "${ORDER_SERVICE_DB_PASSWORD:?set ORDER_SERVICE_DB_PASSWORD}"
create_service_database payment_service "${PAYMENT_SERVICE_DB_PASSWORD:?set PAYMENT_SERVICE_DB_PASSWORD}"
