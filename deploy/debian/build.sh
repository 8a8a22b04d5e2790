#!/bin/sh
# Builds the Debian package var/package/mailmoat_<version>_<arch>.deb from this working tree
# (`npm run package`). Node 24 is inside it (the `node` npm package's binary, a production
# dependency): Debian 12 ships Node 18, older than mailmoat needs.
#   sh deploy/debian/build.sh [OUTDIR]
# Prints the path of the .deb. When nothing that goes into it changed since the last build (same
# content hash), the existing .deb is kept: the test suite builds it on every run.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$repo/var/package}" && cd "${1:-$repo/var/package}" && pwd)
cd "$repo"
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
arch=$(dpkg --print-architecture)
deb="$out/mailmoat_${version}_${arch}.deb"

# What goes into the package: the application (no tests, benchmarks or docs), the lockfile of
# its npm packages, the package's own files. Untracked files count (a build of work in progress).
list_inputs() {
  git ls-files --cached --others --exclude-standard -- \
    bin core gateway rules scanners quarantine-ui package.json package-lock.json .npmrc \
    deploy/clamav-test-db deploy/demo.yaml deploy/debian deploy/systemd deploy/cluster README.md |
    while read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done
}
inputs=$(list_inputs)
hash=$( (printf '%s\n' "$inputs"; printf '%s\n' "$inputs" | tr '\n' '\0' | xargs -0 sha256sum) | sha256sum | cut -c1-64)
if [ -f "$deb" ] && [ "$(cat "$deb.inputs" 2>/dev/null)" = "$hash" ]; then
  echo "$deb"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
app="$root/usr/lib/mailmoat"
mkdir -p "$app" "$root/usr/bin" "$root/etc/mailmoat" "$root/etc/logrotate.d" "$root/lib/systemd/system" \
  "$root/usr/share/doc/mailmoat/examples" "$root/DEBIAN"
printf '%s\n' "$inputs" | grep -E '^(bin|core|gateway|rules|scanners|quarantine-ui|deploy/clamav-test-db)/|^(package\.json|package-lock\.json|\.npmrc|deploy/demo\.yaml)$' |
  tar -cf - -T - | tar -xf - -C "$app"
# The production npm packages, Node 24 among them, exactly as the lockfile says.
(cd "$app" && npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error >&2)
ln -s ../lib/mailmoat/bin/mailmoat "$root/usr/bin/mailmoat"

cp deploy/debian/mailmoat.yaml "$root/etc/mailmoat/mailmoat.yaml"
chmod 0640 "$root/etc/mailmoat/mailmoat.yaml"
cp deploy/debian/logrotate "$root/etc/logrotate.d/mailmoat"
cp deploy/systemd/*.service "$root/lib/systemd/system/"
cp README.md "$root/usr/share/doc/mailmoat/README.md"
cp -r deploy/cluster "$root/usr/share/doc/mailmoat/examples/cluster"
printf 'mailmoat\nLicense: MIT\nThe npm packages in /usr/lib/mailmoat/node_modules carry their own licenses.\n' > "$root/usr/share/doc/mailmoat/copyright"

cp deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
printf '%s\n' /etc/mailmoat/mailmoat.yaml /etc/logrotate.d/mailmoat > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/control" <<CONTROL
Package: mailmoat
Version: $version
Architecture: $arch
Maintainer: mailmoat maintainers <postmaster@mailmoat.invalid>
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: adduser, libc6, libstdc++6, libgcc-s1
Recommends: redis-server, clamav-daemon, clamav-freshclam, spamassassin, spamd
Section: mail
Priority: optional
Description: inbound SMTP filtering gateway (ClamAV, SpamAssassin, quarantine)
 Hosted domains point their MX records at mailmoat; it accepts mail only for
 them, spools each message durably, scans it with ClamAV and SpamAssassin and
 delivers it to the domain's mailbox servers or holds it in a quarantine with
 a web console. One machine runs mailmoat.service; several run the roles
 (mailmoat-smtp, mailmoat-worker, mailmoat-console) on shared PostgreSQL and
 Redis. Includes its own Node.js 24 runtime.
CONTROL

dpkg-deb --root-owner-group -Z"${MAILMOAT_DEB_COMPRESSION:-xz}" --build "$root" "$deb.tmp" >&2
mv "$deb.tmp" "$deb"
echo "$hash" > "$deb.inputs"
echo "$deb"
