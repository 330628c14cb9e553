#!/usr/bin/env bash
# Peer benchmark: the open-source gamification-engine 0.4.0 (PyPI, Python/Pyramid, MIT) on the
# local PostgreSQL, driven through its `increase_value` endpoint, side by side with
# `huoban bench events` in the same run (issue 4, "event-to-progress throughput").
#
# Usage: bench/peers/gamification-engine.sh [--duration SECS] [--concurrency N] [--skip-huoban]
#
# HUOBAN_BIN=path/to/huoban uses that (release) binary instead of building one.
#
# The peer is installed at run time from PyPI into a temporary virtualenv (never committed),
# served by waitress on 127.0.0.1:6543 with its demo data in a scratch database
# `gengine_bench`, and everything is removed afterwards. Needs python3 with venv, gcc and
# libpq-dev (psycopg2 builds from source), and PostgreSQL on 127.0.0.1:5432 (trust auth).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=20
CONCURRENCY=8
SKIP_HUOBAN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --skip-huoban) SKIP_HUOBAN=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
PG="postgresql://postgres@127.0.0.1:5432"
WORK=$(mktemp -d -t gengine-bench.XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS gengine_bench" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! dpkg -s libpq-dev >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  say "installing libpq-dev (psycopg2 builds from source)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpq-dev >/dev/null
fi

say "installing gamification-engine 0.4.0 from PyPI into $WORK/venv"
python3 -m venv "$WORK/venv"
# Its own pins do not install on Python 3.11; this set does (see ../shared/peers/README.md).
"$WORK/venv/bin/pip" install -q "setuptools<70" wheel
"$WORK/venv/bin/pip" install -q gamification-engine==0.4.0 "SQLAlchemy<1.4" "pyramid<2" "Flask<2" \
  "Jinja2<3" "MarkupSafe<2.1" "Werkzeug<1" "itsdangerous<2" "alembic<1.5" "zope.sqlalchemy==1.1" \
  "transaction<3.1" "jsonschema<3" "Flask-Admin<1.6" "WTForms<3" "pyramid_tm<2.5" \
  "dogpile.cache<1" pyramid-swagger-spec==0.0.7

say "configuring it on the local PostgreSQL (database gengine_bench)"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS gengine_bench" >/dev/null
psql "$PG/postgres" -qc "CREATE DATABASE gengine_bench" >/dev/null
"$WORK/venv/bin/pip" download -q --no-deps --no-binary :all: gamification-engine==0.4.0 -d "$WORK/sdist"
tar -xzf "$WORK"/sdist/gamification-engine-0.4.0.tar.gz -C "$WORK"
sed -e "s#^sqlalchemy.url = .*#sqlalchemy.url = postgresql://postgres@127.0.0.1:5432/gengine_bench#" \
    -e "s#^urlcache_active = .*#urlcache_active = false#" \
    -e "s#^enable_user_authentication = .*#enable_user_authentication = false#" \
    -e "s#^pyramid.includes =#pyramid.includes =#" \
    -e "/^    pyramid_debugtoolbar/d" \
    -e "s#^host = 0.0.0.0#host = 127.0.0.1#" \
    -e "s#^level = DEBUG#level = WARN#" \
    -e "s#^handlers = console,sentry#handlers = console#" \
    "$WORK/gamification-engine-0.4.0/development.ini" > "$WORK/dev.ini"
(cd "$WORK" && "$WORK/venv/bin/initialize_gengine_db" dev.ini reset_db=True populate_demo=True >"$WORK/init.log" 2>&1) \
  || { tail -30 "$WORK/init.log" >&2; exit 1; }

say "starting it on 127.0.0.1:6543"
(cd "$WORK" && exec "$WORK/venv/bin/pserve" dev.ini >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 60); do
  curl -fs -o /dev/null http://127.0.0.1:6543/progress/1 && break
  sleep 1
done
curl -fs -o /dev/null http://127.0.0.1:6543/progress/1 || { tail -30 "$WORK/server.log" >&2; exit 1; }

say "driving POST /increase_value/participate/{subject} for ${DURATION}s with $CONCURRENCY clients"
python3 bench/peers/drive_increase_value.py --url http://127.0.0.1:6543 \
  --duration "$DURATION" --concurrency "$CONCURRENCY"

if [ "$SKIP_HUOBAN" = 0 ]; then
  if [ -z "${HUOBAN_BIN:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/huoban/target}"
    say "building huoban (release) for the same run"
    cargo build --release --locked -q -p huoban
    HUOBAN_BIN="$CARGO_TARGET_DIR/release/huoban"
  fi
  say "huoban bench events on the same PostgreSQL (rules active), same duration"
  env -u HUOBAN_BIN "$HUOBAN_BIN" bench events --duration "$DURATION" --warmup 2 --accounts 1000 \
    --concurrency "$CONCURRENCY" --database-url "$PG/test"
fi
