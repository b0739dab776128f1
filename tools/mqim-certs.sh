#!/bin/sh
# mqim-certs.sh - make a development CA, a server certificate for
# localhost / 127.0.0.1 / ::1 and a client certificate, with openssl.
#
# Usage: tools/mqim-certs.sh [DIR] [CLIENT_NAME]
#   DIR          where to write (default data/certs); created mode 0700
#   CLIENT_NAME  the client certificate's common name (default mqim-client)
#
# Writes ca.crt ca.key server.crt server.key client.crt client.key; keys are
# mode 0600.  Existing files are kept (delete DIR to start over).  For
# development and tests only: a production broker uses a certificate from
# a real CA.  Exit status 0 on success, 1 on a usage error, 2 if openssl
# failed.
set -eu

case "${1:-}" in
-h|--help)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 0 ;;
esac
DIR=${1:-data/certs}
CN=${2:-mqim-client}
DAYS=825

command -v openssl >/dev/null 2>&1 || { echo "mqim-certs: openssl not found (make deps)" >&2; exit 2; }
umask 077
mkdir -p "$DIR"
cd "$DIR"

key() { [ -f "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f ca.crt ]; then
	key ca.key
	openssl req -x509 -new -key ca.key -sha256 -days $DAYS -subj "/CN=mqim development CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out ca.crt || exit 2
fi

sign() { # name subject extensions
	key "$1.key"
	[ -f "$1.crt" ] && return 0
	openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" || exit 2
	printf '%s\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
		-days $DAYS -extfile "$1.ext" -out "$1.crt" 2>/dev/null || exit 2
	rm -f "$1.csr" "$1.ext"
}

sign server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
sign client "/CN=$CN" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

chmod 0644 ca.crt server.crt client.crt
chmod 0600 ca.key server.key client.key
echo "mqim-certs: CA, server and client certificates in $DIR"
