#!/bin/bash
# First start of the PostgreSQL container: one role and one database per service (each service owns its store).
# COMPTOIR_DATABASES lists the services; each role's password is <SERVICE>_DB_PASSWORD (default: the name, for a
# laptop only — set real ones in .env). Adding a service: add its name to COMPTOIR_DATABASES in docker-compose.yml.
set -euo pipefail
for name in ${COMPTOIR_DATABASES}; do
  var="$(echo "${name}" | tr '[:lower:]-' '[:upper:]_')_DB_PASSWORD"
  password="${!var:-${name}}"
  echo "creating role and database ${name}"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
       -v name="${name}" -v password="${password}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
done
