#!/bin/sh
# install.sh: install smsbridge as a systemd service without a Debian package.
#
#   sudo ./install.sh                      # build (release) if needed, install, reload
#   ./install.sh --destdir /tmp/stage      # stage the files only (no user, no reload)
#
# Installs the binary, the systemd unit, the udev rules, a commented configuration
# (only if there is none yet), the documentation; creates the system user
# smsbridge (group dialout) and /var/lib/smsbridge; runs `systemctl daemon-reload`
# and `udevadm control --reload`. It does not enable or start the service: put the
# modem into the configuration first (README, "Raspberry Pi appliance").
#
# Options:
#   --prefix DIR     where bin/ and share/ go (default /usr; the unit is rewritten
#                    to match another prefix)
#   --destdir DIR    stage everything under DIR (packaging, tests); implies
#                    --no-system
#   --binary FILE    the smsbridge binary (default target/release/smsbridge, built
#                    with `cargo build --release --locked` if missing)
#   --no-system      do not create the user or reload systemd and udev
set -eu

prefix=/usr
destdir=
binary=
system=yes

usage() { sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) destdir=$2; system=no; shift 2 ;;
        --destdir=*) destdir=${1#*=}; system=no; shift ;;
        --binary) binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --no-system) system=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

src=$(cd "$(dirname "$0")" && pwd)
cd "$src"

if [ -z "$binary" ]; then
    binary=target/release/smsbridge
    if [ ! -x "$binary" ]; then
        echo "install.sh: building $binary (cargo build --release --locked)"
        cargo build --release --locked
    fi
fi
if [ ! -x "$binary" ]; then
    echo "install.sh: $binary is not an executable" >&2
    exit 1
fi
if [ "$system" = yes ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo ./install.sh), or stage with --destdir DIR" >&2
    exit 1
fi

say() { echo "  $*"; }
root=$destdir

# Binary and documentation.
install -D -m 0755 "$binary" "$root$prefix/bin/smsbridge"
say "$prefix/bin/smsbridge"
for doc in README.md docs/kamailio.md docs/asterisk.md; do
    install -D -m 0644 "$doc" "$root$prefix/share/doc/smsbridge/$(basename "$doc")"
done
install -D -m 0644 udev/README.md "$root$prefix/share/doc/smsbridge/udev.md"
install -D -m 0644 hw-tests/README.md "$root$prefix/share/doc/smsbridge/hw-tests.md"
say "$prefix/share/doc/smsbridge/"

# The unit, pointing at this prefix. /etc/systemd/system: a unit installed by
# hand, not by a package.
unit=$root/etc/systemd/system/smsbridge.service
install -d "$(dirname "$unit")"
sed -e "s#/usr/bin/smsbridge#$prefix/bin/smsbridge#g" \
    -e "s#/usr/share/doc/smsbridge#$prefix/share/doc/smsbridge#g" \
    systemd/smsbridge.service >"$unit"
chmod 0644 "$unit"
say /etc/systemd/system/smsbridge.service

install -D -m 0644 udev/70-smsbridge.rules "$root/etc/udev/rules.d/70-smsbridge.rules"
say /etc/udev/rules.d/70-smsbridge.rules

# The configuration: never overwritten.
conf=$root/etc/smsbridge/smsbridge.toml
if [ -e "$conf" ]; then
    say "/etc/smsbridge/smsbridge.toml exists, left as it is"
else
    install -D -m 0640 packaging/smsbridge.toml "$conf"
    say /etc/smsbridge/smsbridge.toml
fi

if [ "$system" = no ]; then
    install -d -m 0750 "$root/var/lib/smsbridge"
    echo "install.sh: staged under ${root:-/}; no user created, nothing reloaded"
    exit 0
fi

# The system user: no login, no home of its own besides the state directory.
if ! getent passwd smsbridge >/dev/null; then
    if command -v adduser >/dev/null && adduser --help 2>&1 | grep -q -- --system; then
        adduser --system --group --quiet --home /var/lib/smsbridge --no-create-home \
            --gecos "smsbridge daemon" smsbridge
    else
        useradd --system --user-group --home-dir /var/lib/smsbridge --no-create-home \
            --shell /usr/sbin/nologin smsbridge
    fi
    say "user smsbridge"
fi
if getent group dialout >/dev/null; then
    usermod -a -G dialout smsbridge
fi
install -d -o smsbridge -g smsbridge -m 0750 /var/lib/smsbridge
chown root:smsbridge /etc/smsbridge/smsbridge.toml
chmod 0640 /etc/smsbridge/smsbridge.toml

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    say "systemctl daemon-reload"
else
    say "systemd is not running: no daemon-reload"
fi
# /run/udev exists wherever udev is installed; --ping asks whether udevd runs.
if command -v udevadm >/dev/null && udevadm control --ping 2>/dev/null; then
    udevadm control --reload
    udevadm trigger --action=add --subsystem-match=tty --subsystem-match=usb || true
    say "udevadm control --reload"
else
    say "udev is not running: no reload"
fi

cat <<EOF
installed. Next:
  1. put your modem into /etc/smsbridge/smsbridge.toml ([[modem]] port = "/dev/smsbridge/...";
     ls -l /dev/smsbridge/ shows the names), then check it:
       smsbridge --config /etc/smsbridge/smsbridge.toml config check
  2. sudo systemctl enable --now smsbridge
  3. smsbridge --config /etc/smsbridge/smsbridge.toml status;  journalctl -u smsbridge -f
EOF
