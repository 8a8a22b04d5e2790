# spamd from Debian's packages, for deploy/cluster/compose.yaml (an example image).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends spamd spamassassin ca-certificates gnupg \
 && rm -rf /var/lib/apt/lists/* \
 && (sa-update || true)
EXPOSE 783
# -x: no per-user preferences (one site config and Bayes store for everybody);
# --allow-tell: mailmoat's spam reports (reportspam@, the console) teach Bayes.
CMD ["spamd", "--listen=0.0.0.0:783", "--allowed-ips=172.28.0.0/24", "-x", "--allow-tell", \
     "--username=debian-spamd", "--helper-home-dir=/var/lib/spamassassin", \
     "--max-children=4", "--syslog=stderr"]
