#!/usr/bin/env bash
# Restore test on the restore host (run as root by dealerscope.ops.dr; environment DR_*): pgBackRest restores into
# the scratch directory, the scratch instance recovers to the target and is verified. Prints "key value" lines;
# the last line says what failed when it exits non-zero. Never touches anything outside DR_DIR.
set -uo pipefail
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "$*"; exit 1; }
as_pg() { runuser -u postgres -- "$@"; }
cd /

case "$DR_DATA" in "$DR_DIR"/*) ;; *) fail "the scratch directory $DR_DATA is not inside $DR_DIR";; esac

# A scratch instance left by a run that died (its lock went stale) is stopped and removed first.
if [ -f "$DR_DATA/postmaster.pid" ]; then as_pg "$DR_BIN/pg_ctl" -D "$DR_DATA" -m immediate -w -t 60 stop >/dev/null 2>&1; fi
rm -rf --one-file-system "$DR_DATA" "$DR_DIR/postgresql.log"
install -d -o postgres -g postgres -m 0700 "$DR_DIR" "$DR_DATA"

case "$DR_MODE" in
  newest) target=(--type=name "--target=$DR_POINT") ;;
  set) target=("--set=$DR_SET" --type=immediate) ;;
  time) target=(--type=time "--target=$DR_TIME") ;;
  *) fail "unknown mode $DR_MODE" ;;
esac

t=$(now)
out=$(as_pg timeout "$DR_TIMEOUT" pgbackrest "--stanza=$DR_STANZA" "--repo=$DR_REPO" "--pg1-path=$DR_DATA" --archive-mode=off \
      --target-action=promote "${target[@]}" --log-level-console=info restore 2>&1) \
  || fail "pgbackrest restore failed: $(printf '%s\n' "$out" | grep -E 'ERROR|WARN' | tail -n 1)"
echo "restore_s $(since "$t")"
echo "set $(printf '%s\n' "$out" | sed -n 's/.*restore backup set \([^ ,]*\).*/\1/p' | head -n 1)"

# The restore point's WAL segment must be in this region before recovery can reach it (archiving is asynchronous).
if [ "$DR_MODE" = newest ]; then
  t=$(now)
  deadline=$(( $(date +%s) + 300 ))
  until as_pg pgbackrest "--stanza=$DR_STANZA" "--repo=$DR_REPO" "--pg1-path=$DR_DATA" archive-get "$DR_SEGMENT" "$DR_DIR/segment.check" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the WAL segment $DR_SEGMENT holding the restore point did not reach repo$DR_REPO within 300 s"
    sleep 1
  done
  rm -f "$DR_DIR/segment.check"
  echo "wal_wait_s $(since "$t")"
fi

printf '%s\n' "$DR_CONF" > "$DR_DATA/postgresql.conf"
printf '%s\n' "$DR_HBA" > "$DR_DATA/pg_hba.conf"
: > "$DR_DATA/pg_ident.conf"
chown postgres:postgres "$DR_DATA/postgresql.conf" "$DR_DATA/pg_hba.conf" "$DR_DATA/pg_ident.conf"
chmod 0600 "$DR_DATA/postgresql.conf" "$DR_DATA/pg_hba.conf" "$DR_DATA/pg_ident.conf"

# hot_standby is off: the instance accepts connections only once recovery reached the target and it was promoted
# (pg_ctl -w returns as soon as the postmaster runs, before that).
t=$(now)
as_pg "$DR_BIN/pg_ctl" -D "$DR_DATA" -l "$DR_DIR/postgresql.log" -w -t "$DR_TIMEOUT" start >/dev/null 2>&1 \
  || fail "the scratch instance did not start: $(grep -E 'FATAL|PANIC' "$DR_DIR/postgresql.log" | tail -n 2 | tr '\n' ' ')"
psql=("$DR_BIN/psql" -XAt -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$DR_PORT" -d "$DR_DB")
deadline=$(( $(date +%s) + DR_TIMEOUT ))
until [ "$(as_pg "${psql[@]}" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
  as_pg "$DR_BIN/pg_ctl" -D "$DR_DATA" status >/dev/null 2>&1 \
    || fail "the scratch instance stopped before it recovered to the target: $(grep -E 'FATAL|PANIC' "$DR_DIR/postgresql.log" | tail -n 2 | tr '\n' ' ')"
  [ "$(date +%s)" -lt "$deadline" ] || fail "the scratch instance did not finish recovery within $DR_TIMEOUT s"
  sleep 0.2
done
echo "recovery_s $(since "$t")"

t=$(now)
marker=$(as_pg "${psql[@]}" -c "SELECT count(*) || ' ' || coalesce(sum(hashtextextended(t::text, 0)), 0) FROM $DR_TABLE t" 2>&1) \
  || fail "the table $DR_TABLE cannot be read: $marker"
echo "marker $marker"
err=$(as_pg "$DR_BIN/pg_dump" -h /var/run/postgresql -p "$DR_PORT" -d "$DR_DB" -f /dev/null 2>&1) || fail "pg_dump could not read every page: $(printf '%s\n' "$err" | tail -n 1)"
indexes=$(as_pg "${psql[@]}" -c "CREATE EXTENSION IF NOT EXISTS amcheck" -c "
  SELECT count(*) FROM (SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't') s" 2>&1 | tail -n 1) \
  || fail "amcheck found a damaged index: $indexes"
echo "indexes $indexes"
echo "verify_s $(since "$t")"
echo "address $(hostname -I | awk '{ print $1 }')"
