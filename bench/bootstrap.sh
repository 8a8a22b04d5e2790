#!/bin/sh
# What `npm run bench` needs besides what the gateway needs: Postfix's smtp-source and smtp-sink
# (Debian package "postfix") and PostgreSQL's server binaries for the cluster-storage rows (Debian
# package "postgresql"). The packages are only unpacked for those programs: the bench never starts
# the Postfix daemon or Debian's PostgreSQL service (it runs a private cluster of its own), and
# policy-rc.d keeps the packages' own postinst from starting them.
set -eu
cd "$(dirname "$0")/.."

# The gateway's engines (redis-server, clamd, spamd) and the npm packages.
sh deploy/bootstrap.sh

missing=""
dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "install ok installed" || missing="$missing postfix"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"

if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench: missing Debian packages:$missing -- run as root, or: sudo apt-get install --no-install-recommends$missing" >&2
    exit 1
  fi
  echo "bench: installing Debian packages$missing (smtp-source/smtp-sink, PostgreSQL binaries; their services are not started)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Debconf: no mail configuration questions, a local-only setup.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # invoke-rc.d asks policy-rc.d before starting a service; 101 means "not allowed".
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null || status=$?
  [ -n "$created_policy" ] && rm -f "$policy"
  [ "${status:-0}" = 0 ] || exit "$status"
fi
for tool in /usr/sbin/smtp-source /usr/sbin/smtp-sink; do
  [ -x "$tool" ] || { echo "bench: $tool is missing after installing postfix" >&2; exit 1; }
done
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { echo "bench: PostgreSQL's server binaries are missing after installing postgresql" >&2; exit 1; }
