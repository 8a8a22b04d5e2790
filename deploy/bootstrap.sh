#!/bin/sh
# Installs what mailmoat needs and is missing on this machine, so that `npm start` and `npm test`
# work on a fresh Debian machine: the Debian packages of the engines (mailmoat starts its own
# private instances of them; it never needs their system services) and the npm packages.
#   sh deploy/bootstrap.sh          what the gateway needs
#   sh deploy/bootstrap.sh --test   also what the test suite needs
set -eu
cd "$(dirname "$0")/.."

packages="redis-server clamav-daemon spamassassin spamd swaks"
if [ "${1:-}" = "--test" ]; then
  # chromium: the console's browser tests; postgresql: the PostgreSQL adapters and the cluster
  # test (a private cluster is started by the test run; Debian's own service is never used).
  packages="$packages chromium postgresql"
fi

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "mailmoat: missing Debian packages:$missing -- run as root, or: sudo apt-get install$missing" >&2
    exit 1
  fi
  echo "mailmoat: installing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm packages: install when missing or when the lockfile changed since the last install.
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "mailmoat: installing npm packages" >&2
  npm ci --no-fund --no-audit --loglevel=error
fi
