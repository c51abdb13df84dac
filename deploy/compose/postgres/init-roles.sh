#!/bin/sh
# First boot of the compose PostgreSQL: one login role and one database per service, each role
# owning only its own database. Passwords come from <SERVICE>_DB_PASSWORD (compose.yaml).
set -eu
for service in accounts notifications provisioning stats audit; do
  variable=$(echo "${service}_DB_PASSWORD" | tr '[:lower:]' '[:upper:]')
  password=$(printenv "$variable")
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v name="$service" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
