#!/bin/sh
# mk/run.sh - start the development broker in the foreground (make run).
#
# Creates the data folder and, on the first run, its SQLite store with a
# first admin: the password comes from MQIM_ADMIN_PASSWORD or is generated
# and printed once.  Then runs mosquitto with the bundled mosquitto.conf.
set -eu
DATA=data          # mosquitto.conf names data/ itself
TLS=${1:-}
BUILD=${BUILD:-build}
CONF=mosquitto.conf

mkdir -p "$DATA"
chmod 0700 "$DATA"
if [ ! -f "$DATA/mqim.db" ]; then
	user=${MQIM_ADMIN_USER:-admin}
	if [ -n "${MQIM_ADMIN_PASSWORD:-}" ]; then
		pw=$MQIM_ADMIN_PASSWORD
		shown="(from MQIM_ADMIN_PASSWORD)"
	else
		pw=$(openssl rand -base64 18)
		shown=$pw
	fi
	printf '%s\n' "$pw" | "$BUILD/mqimctl" --db "$DATA/mqim.db" init "$user" --password-stdin >/dev/null
	echo "mqim: created $DATA/mqim.db with admin '$user', password: $shown"
	echo "mqim: this password is shown once; change it with: $BUILD/mqimctl --db $DATA/mqim.db user passwd $user"
fi

# TLS=1: certificates (tools/mqim-certs.sh) and a conf that is the bundled
# one plus the TLS listener that mosquitto.conf shows commented out.
if [ -n "$TLS" ]; then
	tools/mqim-certs.sh "$DATA/certs" >/dev/null
	CONF=$DATA/mosquitto-tls.conf
	{
		cat mosquitto.conf
		echo
		echo "# added by make run TLS=1"
		echo "listener 8883 127.0.0.1"
		echo "cafile $DATA/certs/ca.crt"
		echo "certfile $DATA/certs/server.crt"
		echo "keyfile $DATA/certs/server.key"
		echo "require_certificate false"
	} > "$CONF"
	echo "mqim: TLS listener on 127.0.0.1:8883, CA certificate $DATA/certs/ca.crt"
fi

# Started as root, mosquitto drops to the user `mosquitto`, which must own
# the data folder (persistence, store) or it silently fails to save.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
	chown -R mosquitto: "$DATA"
fi

echo "mqim: starting mosquitto on 127.0.0.1:1883 (Ctrl-C stops it)"
exec mosquitto -c "$CONF"
