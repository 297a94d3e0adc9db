#!/usr/bin/env bash
# Installs what the local stack and the tests need, when it is missing, on a fresh Debian machine:
# PostgreSQL 15 with pg_cron, pgTAP (+ pg_prove) and plpgsql_check, pgbench, and nginx-light (the
# functions gateway's front) from Debian's packages, and the
# npm dependencies (Supabase CLI, Deno) from package-lock.json. Runs as root, or as a user with
# passwordless sudo; otherwise it says exactly what to install. Quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_EXT=/usr/share/postgresql/15/extension
missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
[ -f "$PG_EXT/pg_cron.control" ] || missing+=(postgresql-15-cron)
[ -f "$PG_EXT/pgtap.control" ] || missing+=(postgresql-15-pgtap)
command -v pg_prove >/dev/null 2>&1 || missing+=(pgtap)
[ -f "$PG_EXT/plpgsql_check.control" ] || missing+=(postgresql-15-plpgsql-check)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client-15)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "ensure-deps: missing Debian packages: ${missing[*]}" >&2
    echo "ensure-deps: install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "ensure-deps: installing ${missing[*]} (apt-get)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq >&2
  # Debian's postgresql-common would create and start a default cluster on port 5432: we manage
  # our own clusters, so ask it not to.
  if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    "${as_root[@]}" mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | "${as_root[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  # Debian's nginx package would start a system-wide nginx on port 80: the gateway runs its own,
  # so deny service starts during the install (unless the machine already has a policy).
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from scripts/ensure-deps.sh: no service starts during this install\nexit 101\n' \
      | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${as_root[@]}" chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  install_ok=1
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || install_ok=""
  [ -z "$policy_added" ] || "${as_root[@]}" rm -f /usr/sbin/policy-rc.d
  [ -n "$install_ok" ] || { echo "ensure-deps: apt-get install failed" >&2; exit 1; }
fi

# npm dependencies: reinstall when package-lock.json is newer than what node_modules holds.
if [ ! -x node_modules/.bin/deno ] || [ ! -x node_modules/.bin/supabase ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm dependencies…" >&2
  # `npm install`, not `npm ci`: npm 11 leaves the other platforms' optional binaries of the
  # supabase CLI out of the lock file, and `npm ci` then refuses the lock as out of sync. With the
  # lock present and the versions pinned, `npm install` installs exactly what it records.
  npm install --no-audit --no-fund --loglevel=error >&2
fi
