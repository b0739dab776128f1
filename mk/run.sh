#!/bin/sh
# mk/run.sh - start the development broker in the foreground (make run).
#
# Creates the data folder and, on the first run, its SQLite store with a
# first admin: the password comes from MQIM_ADMIN_PASSWORD or is generated
# and printed once.  Then runs mosquitto with the bundled mosquitto.conf.
set -eu
DATA=${1:-data}
BUILD=${BUILD:-build}

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

# Started as root, mosquitto drops to the user `mosquitto`, which must own
# the data folder (persistence, store) or it silently fails to save.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
	chown -R mosquitto: "$DATA"
fi

echo "mqim: starting mosquitto on 127.0.0.1:1883 (Ctrl-C stops it)"
exec mosquitto -c mosquitto.conf
