#!/bin/sh
# Offline installer for @PROGRAM@ @VERSION@ (@TARGET@): binary, user, config, data directory and
# service, from this unpacked archive alone. POSIX sh: runs under bash, dash and BusyBox ash.
#
#   sudo ./install.sh [--hub URL] [--join-token T] [--node-id ID] [--level 1-5] [--listen HOST:PORT]
#                     [--set key=value]... [--prefix /usr/local] [--no-start]
#   sudo ./install.sh --uninstall [--purge]
#
# Values given here go into a new @CONFIG_FILE@; an existing one is kept as it is.
set -eu

PROGRAM=@PROGRAM@
VERSION=@VERSION@
TARGET=@TARGET@
MACHINE=@MACHINE@
LIBC=@LIBC@
SVC_USER=@USER@
CONFIG_DIR=/etc/novacron
CONFIG_FILE=$CONFIG_DIR/@CONFIG_NAME@
STATE_DIR=@STATE_DIR@
UNIT=$PROGRAM.service

here=$(cd "$(dirname "$0")" && pwd)
prefix=/usr/local
start=yes
action=install
purge=no
settings=""

say() { printf '%s: %s\n' "$PROGRAM install" "$*"; }
die() { printf '%s: error: %s\n' "$PROGRAM install" "$*" >&2; exit 1; }
add_setting() { settings="$settings$1
"; }
usage() { sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --hub) [ $# -ge 2 ] || die "--hub needs a URL"; add_setting "hub: [$2]"; shift 2 ;;
    --join-token) [ $# -ge 2 ] || die "--join-token needs a value"; add_setting "join_token: \"$2\""; shift 2 ;;
    --node-id) [ $# -ge 2 ] || die "--node-id needs a value"; add_setting "node_id: $2"; shift 2 ;;
    --level) [ $# -ge 2 ] || die "--level needs a value"; add_setting "level: $2"; shift 2 ;;
    --listen) [ $# -ge 2 ] || die "--listen needs HOST:PORT"; add_setting "listen: $2"; shift 2 ;;
    --set)
      [ $# -ge 2 ] || die "--set needs key=value"
      case "$2" in *=*) ;; *) die "--set needs key=value, got '$2'" ;; esac
      add_setting "${2%%=*}: ${2#*=}"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --no-start) start=no; shift ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (sudo $0 ...)"
bindir=$prefix/bin
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

if [ "$action" = uninstall ]; then
  if has_systemd && [ -f "/etc/systemd/system/$UNIT" ]; then
    systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
    rm -f "/etc/systemd/system/$UNIT"
    systemctl daemon-reload
  fi
  rm -f "$bindir/$PROGRAM"
  say "removed $bindir/$PROGRAM and the $UNIT unit"
  if [ "$purge" = yes ]; then
    rm -rf "$STATE_DIR"
    rm -f "$CONFIG_FILE" "$CONFIG_DIR/$PROGRAM.env"
    rmdir "$CONFIG_DIR" 2>/dev/null || true
    if id "$SVC_USER" >/dev/null 2>&1; then
      if command -v userdel >/dev/null 2>&1; then userdel "$SVC_USER" || true; else deluser "$SVC_USER" || true; fi
    fi
    say "purged $STATE_DIR, $CONFIG_FILE and the user $SVC_USER"
  else
    say "kept $CONFIG_FILE and $STATE_DIR (--purge removes them)"
  fi
  exit 0
fi

# 1. This archive fits this machine, and arrived whole.
machine=$(uname -m)
[ "$machine" = "$MACHINE" ] || die "this archive is for $MACHINE ($TARGET), this machine is $machine"
if [ "$LIBC" = musl ]; then
  ls /lib/ld-musl-* >/dev/null 2>&1 || die "this is the musl build (for Alpine); this machine has no musl loader: use the glibc archive"
  for lib in libstdc++.so.6 libgcc_s.so.1; do
    [ -e "/usr/lib/$lib" ] || [ -e "/lib/$lib" ] || die "the musl build needs $lib: apk add libstdc++ libgcc"
  done
fi
(cd "$here" && sha256sum -c SHA256SUMS >/dev/null) || die "checksums do not match SHA256SUMS: the archive is damaged"
"$here/$PROGRAM" --version >/dev/null 2>&1 || die "$here/$PROGRAM does not run on this machine"

# 2. The service user.
if ! id "$SVC_USER" >/dev/null 2>&1; then
  nologin=/usr/sbin/nologin
  [ -x "$nologin" ] || nologin=/sbin/nologin
  if command -v useradd >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell "$nologin" \
      --comment "NovaCron Edge" "$SVC_USER"
  else
    addgroup -S "$SVC_USER"
    adduser -S -D -H -h "$STATE_DIR" -s "$nologin" -G "$SVC_USER" -g "NovaCron Edge" "$SVC_USER"
  fi
  say "created the system user $SVC_USER"
fi

# 3. The binary, replaced atomically so that a running copy is never overwritten in place.
mkdir -p "$bindir"
cp "$here/$PROGRAM" "$bindir/.$PROGRAM.new"
chmod 0755 "$bindir/.$PROGRAM.new"
mv -f "$bindir/.$PROGRAM.new" "$bindir/$PROGRAM"
say "installed $bindir/$PROGRAM ($VERSION, $TARGET)"

# 4. Config (readable by the service's group only: it may hold tokens) and data directory.
mkdir -p "$CONFIG_DIR"
chmod 0755 "$CONFIG_DIR"
if [ -f "$CONFIG_FILE" ]; then
  [ -z "$settings" ] || say "kept the existing $CONFIG_FILE; the values given were NOT applied: edit it"
else
  {
    cat "$here/@CONFIG_NAME@"
    if [ -n "$settings" ]; then
      printf '\n# Set by install.sh\n%s' "$settings"
    fi
  } >"$CONFIG_FILE"
  chown "root:$SVC_USER" "$CONFIG_FILE"
  chmod 0640 "$CONFIG_FILE"
  say "wrote $CONFIG_FILE"
fi
mkdir -p "$STATE_DIR"
chown "$SVC_USER:$SVC_USER" "$STATE_DIR"
chmod 0750 "$STATE_DIR"

# 5. The service.
if has_systemd; then
  sed "s#/usr/bin/$PROGRAM#$bindir/$PROGRAM#" "$here/$UNIT" >"/etc/systemd/system/$UNIT"
  chmod 0644 "/etc/systemd/system/$UNIT"
  systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null 2>&1
  say "enabled $UNIT"
  if [ "$start" = yes ]; then
    systemctl restart "$UNIT"
    systemctl is-active --quiet "$UNIT" || die "$UNIT did not start: journalctl -u $UNIT"
    say "started $UNIT (logs: journalctl -u $UNIT -f)"
  fi
else
  say "no systemd here: start it with"
  say "  su -s /bin/sh $SVC_USER -c '$bindir/$PROGRAM @SUBCOMMAND@ --data $STATE_DIR'"
fi
