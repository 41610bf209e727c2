#!/usr/bin/env bash
# Build a free-threaded CPython 3.13 (python3.13t) from the source package of Debian's current
# stable release, cached by the package's version, and print the interpreter's path on stdout.
#
#   tools/ft-python.sh           --disable-gil
#   tools/ft-python.sh --tsan    --disable-gil --with-thread-sanitizer (own prefix)
#
# gilaudit does not need to be installed for this. Nothing on the machine changes: apt runs with
# a private configuration (its own sources list, state and cache directories under the cache
# dir), and the archive's address is read from the machine's own apt sources, never written
# here. Everything else goes to stderr.
#
# Environment: GILAUDIT_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/gilaudit),
# GILAUDIT_FT_SUITE (default trixie, Debian 13), GILAUDIT_FT_SOURCE (default python3.13),
# GILAUDIT_FT_JOBS (default nproc), GILAUDIT_FT_APT_ETC (where the machine's apt sources are;
# default /etc/apt).
set -euo pipefail

flavour=ft
configure_extra=()
case "${1:-}" in
    "") ;;
    --tsan) flavour=ft-tsan; configure_extra=(--with-thread-sanitizer)
            # The build runs the new interpreter (sysconfig, compileall, ensurepip, the checks
            # below): a data race TSan reports in CPython itself must not fail the build with
            # TSan's exit status 66, nor fill the log.
            export TSAN_OPTIONS="halt_on_error=0 exitcode=0 report_bugs=0" ;;
    *) echo "usage: $0 [--tsan]" >&2; exit 2 ;;
esac

say() { echo "ft-python: $*" >&2; }
die() { say "$*"; exit 1; }

cache="${GILAUDIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gilaudit}/ft-python"
suite="${GILAUDIT_FT_SUITE:-trixie}"
source_pkg="${GILAUDIT_FT_SOURCE:-python3.13}"
jobs="${GILAUDIT_FT_JOBS:-$(nproc 2>/dev/null || echo 2)}"
apt_etc="${GILAUDIT_FT_APT_ETC:-/etc/apt}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$cache"

# A finished build is reused without asking the archive anything: a machine that lost its
# network since still has its interpreter.
latest="$cache/latest-$flavour"
if [ -L "$latest" ] && [ -x "$latest/bin/python3" ] \
    && "$latest/bin/python3" -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") else 1)' 2>/dev/null \
    && [ "${GILAUDIT_FT_REFRESH:-0}" = 0 ]; then
    readlink -f "$latest/bin/python3"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get is not on this machine, so Debian's source package cannot be fetched."
[ -r "$keyring" ] || die "Debian's archive keyring ($keyring) is missing: install debian-archive-keyring."

# The archive's address: the first URI of the machine's own apt sources that serves Debian's
# main archive (not the security one), in either source format.
archive_uri() {
    local f uri
    for f in "$apt_etc"/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        while read -r uri; do
            case "$uri" in *security*) continue ;; */debian|*/debian/) echo "${uri%/}"; return 0 ;; esac
        done < <(sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n')
    done
    for f in "$apt_etc"/sources.list "$apt_etc"/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1 == "deb" || $1 == "deb-src" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f" \
              | grep -v security | grep -E '/debian/?$' | head -n1 || true)
        [ -n "$uri" ] && { echo "${uri%/}"; return 0; }
    done
    return 1
}
uri=$(archive_uri) || die "no Debian archive is named in this machine's apt sources ($apt_etc/sources.list*), so the source package cannot be fetched."

apt_dir="$cache/apt"
mkdir -p "$apt_dir/etc/preferences.d" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb-src [signed-by=$keyring] $uri $suite main" > "$apt_dir/etc/sources.list"
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
    -o "Dir::State=$apt_dir/state"
    -o "Dir::State::Lists=$apt_dir/state/lists"
    -o "Dir::State::status=/dev/null"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root"
    -o "Acquire::Retries=2"
    -o "Debug::NoLocking=1"
)
say "reading the $suite source index"
if ! apt-get "${apt_opts[@]}" -qq update >"$apt_dir/update.log" 2>&1 \
    || grep -qE '^(E|W): (Failed|Some index files failed)' "$apt_dir/update.log"; then
    die "Debian's archive could not be reached for suite $suite ($(grep -m1 -E '^(E|W):' "$apt_dir/update.log" || echo 'no answer'))."
fi
version=$(apt-cache "${apt_opts[@]}" showsrc "$source_pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)
[ -n "$version" ] || die "Debian's $suite has no source package $source_pkg."

prefix="$cache/$source_pkg-$version-$flavour"
if [ -x "$prefix/bin/python3" ] && [ -f "$prefix/.complete" ]; then
    ln -sfn "$prefix" "$latest"
    readlink -f "$prefix/bin/python3"
    exit 0
fi

work="$cache/build-$flavour"
rm -rf "$work" "$prefix"
mkdir -p "$work"
say "downloading $source_pkg $version"
( cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only "$source_pkg=$version" ) >"$work/download.log" 2>&1 \
    || die "the source package $source_pkg $version could not be downloaded ($(tail -n1 "$work/download.log"))."
tarball=$(find "$work" -maxdepth 1 -name "${source_pkg}_*.orig.tar.*" ! -name '*.asc' | head -n1)
[ -n "$tarball" ] || die "the source package $source_pkg $version has no upstream tarball."
tar -xf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'Python-*' | head -n1)
[ -n "$src" ] || die "the upstream tarball of $source_pkg $version holds no Python-* directory."

say "building $(basename "$src") with --disable-gil ${configure_extra[*]:-} into $prefix (log: $work/build.log)"
(
    cd "$src"
    ./configure --prefix="$prefix" --disable-gil "${configure_extra[@]}" --with-ensurepip=install
    make -j"$jobs"
    make install
) >"$work/build.log" 2>&1 || die "the build failed; the last lines of $work/build.log: $(tail -n5 "$work/build.log" | tr '\n' ' ')"

# python3 points at the free-threaded binary in a --disable-gil install; check that it is one.
"$prefix/bin/python3" -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") else 1)' \
    || die "the interpreter built in $prefix is not free-threaded."
"$prefix/bin/python3" -m pip --version >/dev/null 2>&1 || die "pip did not install into $prefix."
touch "$prefix/.complete"
ln -sfn "$prefix" "$latest"
rm -rf "$work"
readlink -f "$prefix/bin/python3"
