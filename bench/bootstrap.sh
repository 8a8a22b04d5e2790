#!/bin/sh
# What `npm run bench` needs besides what the gateway needs: Postfix's smtp-source and smtp-sink
# and PostgreSQL's server binaries for the cluster-storage rows, installed by deploy/bootstrap.sh
# (without starting the packages' services: the bench runs private instances of its own).
set -eu
cd "$(dirname "$0")/.."

sh deploy/bootstrap.sh --bench
for tool in /usr/sbin/smtp-source /usr/sbin/smtp-sink; do
  [ -x "$tool" ] || { echo "bench: $tool is missing after installing postfix" >&2; exit 1; }
done
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { echo "bench: PostgreSQL's server binaries are missing after installing postgresql" >&2; exit 1; }
