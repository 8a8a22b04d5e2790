#!/bin/sh
# What `npm run bench` needs besides what the gateway needs: Postfix's smtp-source and smtp-sink
# (Debian package "postfix"). The package is only unpacked for those two programs: the bench never
# starts the Postfix daemon, and policy-rc.d keeps the package's own postinst from starting it.
set -eu
cd "$(dirname "$0")/.."

# The gateway's engines (redis-server, clamd, spamd) and the npm packages.
sh deploy/bootstrap.sh

if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "install ok installed"; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench: Postfix's smtp-source/smtp-sink are missing -- run as root, or: sudo apt-get install --no-install-recommends postfix" >&2
    exit 1
  fi
  echo "bench: installing Debian package postfix (for smtp-source and smtp-sink; its daemon is not started)" >&2
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
  apt-get install -y -qq --no-install-recommends postfix >/dev/null || status=$?
  [ -n "$created_policy" ] && rm -f "$policy"
  [ "${status:-0}" = 0 ] || exit "$status"
fi
for tool in /usr/sbin/smtp-source /usr/sbin/smtp-sink; do
  [ -x "$tool" ] || { echo "bench: $tool is missing after installing postfix" >&2; exit 1; }
done
