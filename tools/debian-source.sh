#!/usr/bin/env bash
# Fetch and unpack one Debian source package through a private apt configuration, print the
# unpacked tree's path. Used by the ports benchmark for CPython's own modules (python3.11 from
# Debian 12, python3.13 from Debian 13).
#
#   tools/debian-source.sh SUITE PACKAGE DEST
#
# Nothing on the machine changes: apt runs with its own sources list, state and cache under
# DEST/apt, and the archive's address is read from the machine's apt sources (never written
# here). A tree already unpacked in DEST is reused.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SUITE PACKAGE DEST" >&2; exit 2; }
suite=$1 pkg=$2 dest=$3
apt_etc="${GILAUDIT_FT_APT_ETC:-/etc/apt}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
die() { echo "debian-source: $*" >&2; exit 1; }

mkdir -p "$dest"
done_mark="$dest/$pkg-$suite.tree"
if [ -f "$done_mark" ] && [ -d "$(cat "$done_mark")" ]; then cat "$done_mark"; exit 0; fi

uri=""
for f in "$apt_etc"/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n' | grep -v security | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$uri" ] && break
done
if [ -z "$uri" ]; then
    for f in "$apt_etc"/sources.list "$apt_etc"/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1 == "deb" || $1 == "deb-src" { print $2 }' "$f" | grep -v security | grep -E '/debian/?$' | head -n1 || true)
        [ -n "$uri" ] && break
    done
fi
[ -n "$uri" ] || die "no Debian archive in $apt_etc's sources"

apt_dir="$dest/apt-$suite"
mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb-src [signed-by=$keyring] ${uri%/} $suite main" > "$apt_dir/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State=$apt_dir/state" -o "Dir::State::Lists=$apt_dir/state/lists"
      -o "Dir::State::status=/dev/null" -o "Dir::Cache=$apt_dir/cache"
      -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
apt-get "${opts[@]}" -qq update >"$apt_dir/update.log" 2>&1 || die "apt-get update failed (see $apt_dir/update.log)"
(cd "$dest" && apt-get "${opts[@]}" -qq source --download-only "$pkg" >"$apt_dir/source.log" 2>&1) \
    || die "apt-get source $pkg failed (see $apt_dir/source.log)"
orig=$(ls "$dest"/"${pkg}"_*.orig.tar.* 2>/dev/null | head -n1)
[ -n "$orig" ] || die "no upstream tarball for $pkg"
top=$(tar tf "$orig" | awk -F/ 'NR == 1 { print $1 }')
tar xf "$orig" -C "$dest"
echo "$dest/$top" > "$done_mark"
echo "$dest/$top"
