#!/bin/sh
# Installs everything wtgfs needs to build, test and benchmark on Debian 12
# (as root).  Quick when all is there already.
set -eu
pkgs="autoconf automake make gcc clang pkg-config
libfuse3-dev fuse3 libwim-dev wimtools nettle-dev ntfs-3g-dev
ntfs-3g attr python3 xxd libvhdi-dev qemu-utils fdisk dosfstools util-linux
libsqlite3-dev libzstd-dev sqlite3 jq gdisk libjson-c-dev libfdisk-dev e2fsprogs
libhivex-dev libxml2-dev libhivex-bin python3-hivex mtools grub-common grub-efi-amd64-bin
qemu-system-x86 ovmf rsync strace"
[ -f "$(dirname "$0")/deps-bench.txt" ] && pkgs="$pkgs $(cat "$(dirname "$0")/deps-bench.txt")"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "wtgfs: run as root to install:$missing" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
