#!/usr/bin/env bash
# Makes the certificates the TLS tests need, in DIR:
#   server-ca.{crt,key}   CA of the exporter's certificate
#   server.{crt,key}      the exporter's certificate, for localhost and 127.0.0.1
#   client-ca.{crt,key}   CA that client_ca_file names
#   client.{crt,key}      a valid scraper certificate
#   expired.{crt,key}     a scraper certificate from client-ca that expired in 2020
#   stranger.{crt,key}    a valid certificate from a CA the exporter does not trust
#   make_test_pki.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"

ca() {  # name subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
leaf() {  # name subject ca extensions
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

ca server-ca "meshflow test server CA"
ca client-ca "meshflow test client CA"
ca stranger-ca "somebody else's CA"
leaf server localhost server-ca "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client prometheus client-ca "extendedKeyUsage=clientAuth"
leaf stranger prometheus stranger-ca "extendedKeyUsage=clientAuth"

# `openssl x509 -req` cannot back-date before OpenSSL 3.4; `openssl ca` can.
mkdir -p ca-db
: > ca-db/index.txt
echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = $PWD/ca-db/index.txt
serial = $PWD/ca-db/serial
new_certs_dir = $PWD/ca-db
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = client_ext
[any]
commonName = supplied
[client_ext]
extendedKeyUsage = clientAuth
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=prometheus" \
  -keyout expired.key -out expired.csr 2>/dev/null
openssl ca -batch -config ca-db/ca.cnf -cert client-ca.crt -keyfile client-ca.key \
  -startdate 20200101000000Z -enddate 20200201000000Z -notext -in expired.csr \
  -out expired.crt 2>/dev/null
# Prometheus and the exporter run as other users in some tests.
chmod 644 ./*.crt ./*.key
