#!/usr/bin/env bash
# tools/sid.sh -- CPython 3.14 and 3.15 (release and Py_DEBUG builds) from
# Debian's unstable suite, in a debootstrapped root, for the suite and the
# debug and sanitizer runs on the current CPythons.
#
#   tools/sid.sh root                       build the root if it is missing;
#                                           print its path
#   tools/sid.sh suite [--fresh] PYTHON SRC [PYTEST-ARG...]
#                                           install a clean copy of the project
#                                           at SRC with its [test] extra into a
#                                           venv of PYTHON (python3.14,
#                                           python3.15-dbg, ...) inside the root
#                                           and run pytest there; the venv is
#                                           kept per PYTHON and SRC between runs
#                                           unless --fresh; OBJARENA_CFLAGS and
#                                           OBJARENA_LDFLAGS pass through
#   tools/sid.sh exec [--fresh] PYTHON SRC -- CMD [ARG...]
#                                           the same install, then CMD run in
#                                           the project's folder with the venv
#                                           first on PATH (OA_SID_EXTRA: more
#                                           packages for a new venv, each
#                                           optional)
#   tools/sid.sh run [-b HOST:INSIDE]... -- CMD [ARG...]
#                                           run CMD inside the root, with
#                                           /proc mounted and each HOST folder
#                                           bound at INSIDE, as root
#
# The root is built once per machine (about a minute) and reused: it lives at
# $OA_SID_ROOT (default /var/tmp/objarena-sid).  Mounts are made in a private
# mount namespace (unshare), so they vanish with the command, whatever way it
# ends, and concurrent runs do not see one another's mounts.
# Needs root (debootstrap, chroot, mount).
set -euo pipefail

ROOTDIR=${OA_SID_ROOT:-/var/tmp/objarena-sid}
PKGS=python3.14-dev,python3.14-venv,python3.14-dbg,python3.15-dev,python3.15-venv,python3.15-dbg,gcc,libc6-dev,ca-certificates

log() { printf '[sid %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The Debian mirror apt on this machine already uses (deb822 or one-line form).
host_mirror() {
    local m
    m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
            | awk '{print $2}' | grep -E '/debian/?$' | head -n 1 || true)
    [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '{print $2}' | grep -E '/debian/?$' | head -n 1 || true)
    [ -n "$m" ] || m=http://deb.debian.org/debian
    echo "$m"
}

ensure_root() {
    if [ -x "$ROOTDIR/usr/bin/python3.15-dbg" ] && [ -x "$ROOTDIR/usr/bin/python3.14-dbg" ] \
            && [ -e "$ROOTDIR/.objarena-ready" ]; then
        return 0
    fi
    if ! command -v debootstrap >/dev/null; then
        log "apt-get install debootstrap"
        apt-get update -q </dev/null >/dev/null 2>&1 || die "apt-get update failed"
        apt-get install -y -q --no-install-recommends debootstrap </dev/null >/dev/null 2>&1 \
            || die "apt-get install debootstrap failed"
    fi
    local mirror tmp
    mirror=$(host_mirror)
    tmp="$ROOTDIR.partial"
    rm -rf "$tmp"
    mkdir -p "$(dirname "$ROOTDIR")"
    log "debootstrap sid into $ROOTDIR from $mirror"
    debootstrap --variant=minbase --include="$PKGS" sid "$tmp" "$mirror" \
        >"$tmp.log" 2>&1 || { tail -n 30 "$tmp.log" >&2; die "debootstrap failed"; }
    # pip inside the root checks certificates against the host's bundle.
    mkdir -p "$tmp/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/ca-certificates.crt"
    cp -L /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
    touch "$tmp/.objarena-ready"
    rm -rf "$ROOTDIR"
    mv "$tmp" "$ROOTDIR"
    rm -f "$tmp.log"
}

run_in_root() {
    local binds=() b
    while [ $# -gt 0 ]; do
        case "$1" in
            -b) binds+=("$2"); shift 2 ;;
            --) shift; break ;;
            *) die "run: unknown option $1" ;;
        esac
    done
    [ $# -gt 0 ] || die "run: no command"
    ensure_root
    cp -L /etc/resolv.conf "$ROOTDIR/etc/resolv.conf" 2>/dev/null || true
    # A private /tmp per run: concurrent runs never share scratch files.
    local script='set -e; mount -t proc proc "$R/proc"; mount -t tmpfs tmpfs "$R/tmp";'
    for b in "${binds[@]}"; do
        local host=${b%%:*} inside=${b#*:}
        mkdir -p "$ROOTDIR$inside"
        script+=" mount --bind '$host' \"\$R$inside\";"
    done
    # Pass through only what a run needs (and the variables named in
    # OA_SID_PASS); the host's PATH points nowhere there.
    script+=' pass=(); for v in $OA_SID_PASS; do pass+=("$v=${!v-}"); done;
        exec chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 \
        PYTHONFAULTHANDLER=1 "${pass[@]}" "$@"'
    R="$ROOTDIR" OA_SID_PASS="${OA_SID_PASS:-}" \
        unshare --mount --propagation private bash -c "$script" bash "$@"
}

# exec [--fresh] PYTHON SRC -- CMD...: install SRC into the venv, then run
# CMD in /src (SRC bound there) with the venv's bin first on PATH.
run_exec() {
    local fresh=0
    [ "${1:-}" = --fresh ] && { fresh=1; shift; }
    [ $# -ge 3 ] && [ "$3" = -- ] || die "exec: PYTHON SRC -- CMD expected"
    local py=$1 src
    src=$(cd "$2" && pwd)
    shift 3
    local venv="/venvs/$py-$(printf '%s' "$src" | md5sum | cut -c1-8)"
    # The project is copied without build products, so every build starts
    # clean (setuptools would reuse object files built with other flags).
    local inner='set -e
        copy=$(mktemp -d /tmp/oa-src.XXXXXX)
        tar -C /src --exclude=./.git --exclude=./build --exclude=./dist \
            --exclude="./.venv*" --exclude="*.egg-info" --exclude=__pycache__ \
            --exclude=.pytest_cache --exclude=.hypothesis --exclude="*.so" --exclude="*.o" \
            -cf - . | tar -C "$copy" -xf -
        if [ "$FRESH" = 1 ] || [ ! -x "$VENV/bin/python" ]; then
            rm -rf "$VENV"
            "$PY" -m venv "$VENV"
            "$VENV/bin/python" -m pip install -q "$copy[test]" </dev/null
            for p in $EXTRA; do
                "$VENV/bin/python" -m pip install -q "$p" </dev/null \
                    || echo "[sid] optional $p does not install on $PY: left out"
            done
        else
            "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$copy" </dev/null
        fi
        rm -rf "$copy"
        cd /src
        PATH="$VENV/bin:$PATH" exec "$@"'
    FRESH=$fresh VENV=$venv PY=$py EXTRA="${OA_SID_EXTRA:-}" \
        OBJARENA_CFLAGS="${OBJARENA_CFLAGS:-}" OBJARENA_LDFLAGS="${OBJARENA_LDFLAGS:-}" \
        OA_SID_PASS="${OA_SID_PASS:-} FRESH VENV PY EXTRA OBJARENA_CFLAGS OBJARENA_LDFLAGS" \
        run_in_root -b "$src:/src" -- bash -c "$inner" bash "$@"
}

# suite [--fresh] PYTHON SRC [PYTEST-ARG...]
run_suite() {
    local opt=()
    [ "${1:-}" = --fresh ] && { opt=(--fresh); shift; }
    [ $# -ge 2 ] || die "suite: PYTHON SRC expected"
    local py=$1 src=$2 a paths=(tests)
    shift 2
    for a in "$@"; do case $a in tests*) paths=() ;; esac; done
    run_exec "${opt[@]}" "$py" "$src" -- python -m pytest "$@" "${paths[@]}"
}

case "${1:-}" in
    suite) shift; run_suite "$@" ;;
    exec) shift; run_exec "$@" ;;
    root) ensure_root; echo "$ROOTDIR" ;;
    run) shift; run_in_root "$@" ;;
    *) echo "usage: tools/sid.sh root | suite [--fresh] PYTHON SRC [PYTEST-ARG...] | exec [--fresh] PYTHON SRC -- CMD... | run [-b HOST:INSIDE]... -- CMD [ARG...]" >&2; exit 2 ;;
esac
