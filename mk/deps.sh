#!/bin/sh
# mk/deps.sh - install what mqim needs to build, run and test, with apt-get.
#
# Idempotent and fast when everything is present: it asks dpkg first and only
# calls apt-get (update once, then install) for the packages that are missing.
# Needs root (or sudo) only when something is missing.
set -eu

PKGS="gcc make pkg-config clang libclang-rt-14-dev
mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
libpaho-mqtt-dev libmsgpack-dev libcmocka-dev libsqlite3-dev sqlite3
libssl-dev openssl libargon2-dev libcjson-dev libjwt-dev uthash-dev
iproute2 iptables procps"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "mk/deps.sh: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "mk/deps.sh: need root (or sudo) to install:$missing" >&2
		exit 1
	}
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
