#!/usr/bin/env bash
# Install the edge agent's OS configuration on a Raspberry Pi (64-bit Raspberry Pi OS / Debian).
#
# What it does, in order (every step is idempotent: running it again changes nothing that is
# already right, and never overwrites an existing /etc/edge-agent/*.toml):
#   1. creates the system user `edge-agent` (groups dialout, video) unless it exists;
#   2. creates /opt/edge-agent/venv and pip-installs the agent from the source tree (--no-venv skips);
#   3. copies systemd units, systemd-networkd .network files, udev rules, the example config and
#      the docs; each file is written only when its content differs;
#   4. creates /var/lib/edge-agent (0750) and /var/lib/edge-agent/keys (0700) owned by the user;
#   5. with --can-hat, appends the CAN HAT overlay lines to /boot/firmware/config.txt once;
#   6. with --pki DIR (a site PKI as hardware/mosquitto/make-test-pki.sh lays it out): the site CA
#      and this station's certificate (DIR/STATION.{crt,key}, --station, default bench-1) go to
#      /etc/edge-agent/pki/ as the shipped config expects (TLS on 8883, client certificate);
#      with --gateway also DIR/gateway.{crt,key}, and the site broker: site.conf, the ACL (SITE
#      = --site, default site-1) and DIR/broker.{crt,key} for Mosquitto. Without --pki, missing
#      certificates are listed (the agent and `config check` refuse to start without them);
#   7. enables systemd-networkd and the units, reloads udev (--no-enable skips).
#
# Usage: sudo hardware/install.sh [--can-hat mcp2515|mcp2518fd] [--gateway] [--no-enable]
#                                 [--pki DIR [--station NAME] [--site NAME]]
#        hardware/install.sh --destdir /tmp/root --no-venv   # stage into a directory, no root
#        hardware/install.sh --dry-run                       # print the plan, change nothing
#
# With --destdir (or $DESTDIR) every path is prefixed and the steps that act on the running
# system (useradd, chown, systemctl, udevadm) are reported as skipped.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(dirname "$SCRIPT_DIR")"
DESTDIR="${DESTDIR:-}"
DRY_RUN=0
CAN_HAT=none
GATEWAY=0
ENABLE=1
VENV=1
PYTHON=python3
USER_NAME=edge-agent
PREFIX=/opt/edge-agent
CONFIG_TXT=/boot/firmware/config.txt
PKI=""
STATION=bench-1
SITE=site-1

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --destdir) DESTDIR="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --can-hat) CAN_HAT="$2"; shift 2 ;;
    --gateway) GATEWAY=1; shift ;;
    --no-enable) ENABLE=0; shift ;;
    --no-venv) VENV=0; shift ;;
    --python) PYTHON="$2"; shift 2 ;;
    --source) SOURCE="$2"; shift 2 ;;
    --pki) PKI="$2"; shift 2 ;;
    --station) STATION="$2"; shift 2 ;;
    --site) SITE="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case "$CAN_HAT" in
  none|mcp2515|mcp2518fd) ;;
  *) echo "install.sh: --can-hat must be mcp2515, mcp2518fd or none" >&2; exit 2 ;;
esac
case "$STATION$SITE" in
  *[!A-Za-z0-9_-]*) echo "install.sh: --station and --site take letters, digits, _ and -" >&2; exit 2 ;;
esac
if [ -n "$PKI" ] && [ ! -f "$PKI/ca.crt" ]; then
  echo "install.sh: --pki $PKI has no ca.crt (see hardware/mosquitto/make-test-pki.sh)" >&2
  exit 2
fi
OS="$SOURCE/hardware/os"
[ -d "$OS" ] || { echo "install.sh: $OS not found (use --source REPO)" >&2; exit 2; }
if [ -z "$DESTDIR" ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo), or stage with --destdir DIR" >&2
  exit 2
fi
LIVE=1
[ -n "$DESTDIR" ] && LIVE=0

say() { printf '%s\n' "$*"; }
# run CMD...: execute, or only print it in dry-run mode.
run() {
  if [ "$DRY_RUN" = 1 ]; then say "would run: $*"; else "$@"; fi
}
# live CMD...: act on the running system; skipped when staging into DESTDIR.
live() {
  if [ "$LIVE" = 0 ]; then say "skipped (destdir): $*"; else run "$@"; fi
}

# put SRC DEST MODE: copy when missing or different, report what happened.
put() {
  local src="$1" dest="$DESTDIR$2" mode="$3"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    say "unchanged: $2"
    return
  fi
  say "install: $2"
  run install -D -m "$mode" "$src" "$dest"
}

# keep SRC DEST MODE: install only when missing (user-edited config is never overwritten).
keep() {
  local src="$1" dest="$DESTDIR$2" mode="$3"
  if [ -e "$dest" ]; then
    say "kept: $2"
    return
  fi
  say "install: $2"
  run install -D -m "$mode" "$src" "$dest"
}

# keep_edited SRC DEST MODE SED-EXPR: like keep, with SRC passed through sed first.
keep_edited() {
  local src="$1" dest="$DESTDIR$2" mode="$3" expr="$4" tmp
  if [ -e "$dest" ]; then
    say "kept: $2"
    return
  fi
  say "install: $2"
  tmp="$(mktemp)"
  sed "$expr" "$src" >"$tmp"
  run install -D -m "$mode" "$tmp" "$dest"
  rm -f "$tmp"
}

# 1. user
if [ "$LIVE" = 1 ] && getent passwd "$USER_NAME" >/dev/null; then
  say "exists: user $USER_NAME"
  run usermod -a -G dialout,video "$USER_NAME"
else
  live useradd --system --user-group --home-dir /var/lib/edge-agent --no-create-home \
    --shell /usr/sbin/nologin --groups dialout,video "$USER_NAME"
fi

# 2. virtual environment with the agent
if [ "$VENV" = 1 ]; then
  if [ -x "$DESTDIR$PREFIX/venv/bin/python" ]; then
    say "exists: $PREFIX/venv"
  else
    run "$PYTHON" -m venv "$DESTDIR$PREFIX/venv"
  fi
  run "$DESTDIR$PREFIX/venv/bin/pip" install --quiet --upgrade "$SOURCE"
else
  say "skipped (--no-venv): $PREFIX/venv"
fi

# 3. files
put "$OS/systemd/system/edge-agent.service" /etc/systemd/system/edge-agent.service 0644
if [ "$GATEWAY" = 1 ]; then
  put "$OS/systemd/system/edge-agent-gateway.service" /etc/systemd/system/edge-agent-gateway.service 0644
  keep "$OS/edge-agent/gateway.toml" /etc/edge-agent/gateway.toml 0640
fi
for f in "$OS"/systemd/network/*.network; do
  put "$f" "/etc/systemd/network/$(basename "$f")" 0644
done
put "$OS/udev/rules.d/99-edge-agent.rules" /etc/udev/rules.d/99-edge-agent.rules 0644
keep_edited "$OS/edge-agent/config.toml" /etc/edge-agent/config.toml 0640 \
  "s/^site = \"site-1\"/site = \"$SITE\"/; s/^station = \"bench-1\"/station = \"$STATION\"/"
for f in "$SOURCE"/docs/*.md; do
  [ -e "$f" ] || continue
  put "$f" "$PREFIX/docs/$(basename "$f")" 0644
done

# 4. data directories (systemd's StateDirectory= also creates the first one)
for d in /var/lib/edge-agent:0750 /var/lib/edge-agent/keys:0700; do
  path="${d%%:*}" mode="${d##*:}"
  if [ -d "$DESTDIR$path" ]; then say "exists: $path"; else say "create: $path"; fi
  run install -d -m "$mode" "$DESTDIR$path"
done
live chown -R "$USER_NAME:$USER_NAME" /var/lib/edge-agent
# Configs may hold broker passwords: root-owned, readable by the service group only (0640).
live chgrp "$USER_NAME" /etc/edge-agent/config.toml
[ "$GATEWAY" = 1 ] && live chgrp "$USER_NAME" /etc/edge-agent/gateway.toml

# 5. CAN HAT overlay
if [ "$CAN_HAT" != none ]; then
  snippet="$OS/boot/config-$CAN_HAT.txt"
  target="$DESTDIR$CONFIG_TXT"
  if [ -f "$target" ] && grep -q '^# --- edge-agent:' "$target"; then
    say "unchanged: $CONFIG_TXT already has an edge-agent CAN block (edit it by hand to switch HATs)"
  else
    say "append: $CONFIG_TXT <- config-$CAN_HAT.txt (reboot to load the overlay)"
    if [ "$DRY_RUN" = 1 ]; then
      say "would append $snippet to $target"
    else
      mkdir -p "$(dirname "$target")"
      printf '\n' >>"$target"
      cat "$snippet" >>"$target"
    fi
  fi
fi

# 6. site PKI: the shipped configs speak TLS on 8883 with these files
PKI_DIR=/etc/edge-agent/pki
if [ -n "$PKI" ]; then
  put "$PKI/ca.crt" "$PKI_DIR/ca.crt" 0644
  for pair in "$STATION:station" "gateway:gateway"; do
    name="${pair%%:*}" as="${pair##*:}"
    [ "$as" = gateway ] && [ "$GATEWAY" = 0 ] && continue
    [ -f "$PKI/$name.crt" ] || { echo "install.sh: $PKI/$name.crt missing" >&2; exit 2; }
    put "$PKI/$name.crt" "$PKI_DIR/$as.crt" 0644
    put "$PKI/$name.key" "$PKI_DIR/$as.key" 0640
    live chgrp "$USER_NAME" "$PKI_DIR/$as.key"
  done
  if [ "$GATEWAY" = 1 ] && [ -f "$PKI/broker.crt" ]; then
    put "$SOURCE/hardware/mosquitto/site.conf" /etc/mosquitto/conf.d/battrace-site.conf 0644
    put "$PKI/ca.crt" /etc/mosquitto/battrace/ca.crt 0644
    put "$PKI/broker.crt" /etc/mosquitto/battrace/broker.crt 0644
    put "$PKI/broker.key" /etc/mosquitto/battrace/broker.key 0640
    keep_edited "$SOURCE/hardware/mosquitto/acl" /etc/mosquitto/battrace/acl 0644 "s/SITE/$SITE/g"
    live chgrp mosquitto /etc/mosquitto/battrace/broker.key
  fi
else
  for f in ca.crt station.crt station.key; do
    [ -e "$DESTDIR$PKI_DIR/$f" ] || say "missing: $PKI_DIR/$f (pass --pki DIR: the site CA and this station's certificate)"
  done
fi

# 7. enable
if [ "$ENABLE" = 1 ]; then
  live systemctl daemon-reload
  live systemctl enable systemd-networkd
  live udevadm control --reload
  live udevadm trigger --subsystem-match=tty
  live systemctl enable edge-agent.service
  [ "$GATEWAY" = 1 ] && live systemctl enable edge-agent-gateway.service
  say "next: put the station key in /var/lib/edge-agent/keys, then"
  say "      sudo -u $USER_NAME $PREFIX/venv/bin/edge-agent --config /etc/edge-agent/config.toml selftest"
  say "      sudo systemctl start edge-agent"
else
  say "skipped (--no-enable): systemctl enable"
fi
say "done"
