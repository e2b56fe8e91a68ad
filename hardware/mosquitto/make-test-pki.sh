#!/bin/sh
# Generate a TEST certificate authority, a broker certificate and client certificates for a site.
#
#   make-test-pki.sh OUTDIR STATION [STATION ...]
#
# Writes OUTDIR/ca.{crt,key}, broker.{crt,key} (CN=localhost, SAN localhost/127.0.0.1/::1 plus
# $BROKER_HOSTS, space separated), gateway.{crt,key} (CN=gateway) and <station>.{crt,key}
# (CN=<station>). With use_identity_as_username the CN becomes the MQTT username that the ACL
# file matches. EC P-256 keys, valid $DAYS days (default 825). Test use only: the CA key sits
# next to the certificates unencrypted.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 OUTDIR STATION [STATION ...]" >&2; exit 2; }
out=$1; shift
days=${DAYS:-825}
mkdir -p "$out"
cd "$out"
umask 077

newkey() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"; }

# CA
newkey ca
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=battrace test site CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt

# issue NAME CN EXTFILE-CONTENT
issue() {
    newkey "$1"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
        -days "$days" -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for host in ${BROKER_HOSTS:-}; do san="$san,DNS:$host"; done
issue broker localhost "subjectAltName=$san
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
issue gateway gateway "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
for station in "$@"; do
    case $station in
        *[!A-Za-z0-9_-]*|gateway) echo "bad station id: $station" >&2; exit 2;;
    esac
    issue "$station" "$station" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
done
rm -f ca.srl
chmod 644 ./*.crt
echo "test PKI written to $out: ca, broker, gateway, $*"
