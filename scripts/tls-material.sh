#!/usr/bin/env bash
# tls-material.sh DIR CA_NAME: a fresh CA (CN=CA_NAME) and a leaf for 127.0.0.1 / localhost signed
# by it (P-256, 2 days), for a mock upstream behind TLS: DIR/ca.pem (what the gateways and nginx
# trust), DIR/leaf.pem and DIR/leaf.key (what the mock serves). Used by the reliability suite and
# the benchmark's TLS phases.
set -euo pipefail
dir=$1 ca_name=$2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$ca_name" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$dir/leaf.key" -out "$dir/leaf.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/leaf.ext"
openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/leaf.ext" -out "$dir/leaf.pem" 2>/dev/null
