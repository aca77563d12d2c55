#!/usr/bin/env bash
# Lays out deploy/web-config.example.yml verbatim in ETC_DIR, with the test certificates of PKI_DIR
# (made there by make_test_pki.sh unless PKI_DIR exists) where its relative paths point:
# tls/meshflow.{crt,key} for the server, tls/scraper-ca.crt for the scrapers' client
# certificates. Its bcrypt hash is of "scraper-pass".
#   example_web_config.sh PKI_DIR ETC_DIR      (writes ETC_DIR/web.yml)
set -euo pipefail
pki=$1
etc=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
[[ -d $pki ]] || "$src/tests/web/make_test_pki.sh" "$pki" >/dev/null
mkdir -p "$etc/tls"
cp "$src/deploy/web-config.example.yml" "$etc/web.yml"
cp "$pki/server.crt" "$etc/tls/meshflow.crt"
cp "$pki/server.key" "$etc/tls/meshflow.key"
cp "$pki/client-ca.crt" "$etc/tls/scraper-ca.crt"
