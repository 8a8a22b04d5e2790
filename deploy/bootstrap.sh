#!/bin/sh
# Installs what mailmoat needs and is missing on this machine, so that `npm start` and `npm test`
# work on a fresh Debian machine: the Debian packages of the engines (mailmoat starts its own
# private instances of them; it never needs their system services) and the npm packages.
#   sh deploy/bootstrap.sh          what the gateway needs
#   sh deploy/bootstrap.sh --test   also what the test suite needs
#   sh deploy/bootstrap.sh --bench  also what `npm run bench` needs
set -eu
cd "$(dirname "$0")/.."

packages="redis-server clamav-daemon spamassassin spamd swaks"
case "${1:-}" in
  # chromium: the console's browser tests; postgresql: the PostgreSQL adapters and the cluster
  # test (a private cluster is started by the test run); dovecot-core: the submission AUTH backend
  # test (a private dovecot with a passwd-file is started by it); slapd, ldap-utils: the console's
  # LDAP login tests (a private slapd with its own slapd.conf, loaded with slapadd).
  --test) packages="$packages chromium postgresql dovecot-core slapd ldap-utils" ;;
  # postfix: only its smtp-source and smtp-sink; postgresql: the cluster-storage rows.
  --bench) packages="$packages postfix postgresql" ;;
esac

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "mailmoat: missing Debian packages:$missing -- run as root, or: sudo apt-get install$missing" >&2
    exit 1
  fi
  echo "mailmoat: installing Debian packages:$missing (their system services are not started)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks no mail configuration questions: its daemon is never used.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # slapd makes no directory of its own (the tests start a private one): no admin password to ask.
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  # The packages' own services (Debian's redis, clamd, spamd, PostgreSQL cluster, Postfix, slapd) are not
  # started by their install: invoke-rc.d asks policy-rc.d first, and 101 means "not allowed".
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  status=0
  apt-get update -qq || status=$?
  # shellcheck disable=SC2086
  [ "$status" != 0 ] || apt-get install -y -qq --no-install-recommends $missing >/dev/null || status=$?
  [ -z "$created_policy" ] || rm -f "$policy"
  [ "$status" = 0 ] || exit "$status"
fi

# npm packages: install when missing or when the lockfile changed since the last install.
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "mailmoat: installing npm packages" >&2
  npm ci --no-fund --no-audit --loglevel=error
fi
