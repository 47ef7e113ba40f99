#!/usr/bin/env bash
# Restore test and DR drill on the restore host (run as root by dealerscope.ops.dr; environment DR_*): pgBackRest
# restores into DR_DIR/data, the instance recovers to the target (or, in the drill's mode "end", to the end of the
# archived WAL) and is verified. The restore test starts it with pg_ctl; the drill with its systemd unit (DR_UNIT),
# which keeps it as the new primary. Prints "key value" lines; the last line says what failed when it exits
# non-zero. Never touches anything outside DR_DIR.
set -uo pipefail
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "$*"; exit 1; }
as_pg() { runuser -u postgres -- "$@"; }
cd /

case "$DR_DATA" in "$DR_DIR"/*) ;; *) fail "the scratch directory $DR_DATA is not inside $DR_DIR";; esac

UNIT=${DR_UNIT:-}
# A drill left its instance as the primary here: it is never restored over (fail back first).
[ -e "$DR_DIR/left-as-primary" ] && fail "$DR_DIR holds the primary a drill left ($(cat "$DR_DIR/left-as-primary")) - fail back first (-e dr_drill_action=failback)"
# A scratch instance left by a run that died (its lock went stale) is stopped and removed first.
if [ -n "$UNIT" ]; then systemctl stop "$UNIT" 2>/dev/null; systemctl reset-failed "$UNIT" 2>/dev/null; fi
if [ -f "$DR_DATA/postmaster.pid" ]; then as_pg "$DR_BIN/pg_ctl" -D "$DR_DATA" -m immediate -w -t 60 stop >/dev/null 2>&1; fi
# The backups this run restores are named in the lock (dealerscope.ops.backup never expires them meanwhile).
if [ -n "${DR_IN_USE:-}" ] && [ -d "${DR_LOCK:-/nonexistent}" ]; then printf '%s\n' "$DR_IN_USE" > "$DR_LOCK/in_use.json"; fi
rm -rf --one-file-system "$DR_DATA" "$DR_DIR/postgresql.log"
install -d -o postgres -g postgres -m 0700 "$DR_DIR" "$DR_DATA"

case "$DR_MODE" in
  newest) target=(--type=name "--target=$DR_POINT") ;;
  set) target=("--set=$DR_SET" --type=immediate) ;;
  time) target=(--type=time "--target=$DR_TIME") ;;
  end) target=(--type=default) ;;
  *) fail "unknown mode $DR_MODE" ;;
esac

t=$(now)
[ "$DR_MODE" = end ] || target+=(--target-action=promote)
out=$(as_pg timeout "$DR_TIMEOUT" pgbackrest "--stanza=$DR_STANZA" "--repo=$DR_REPO" "--pg1-path=$DR_DATA" --archive-mode=off \
      "${target[@]}" --log-level-console=info restore 2>&1) \
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
psql=("$DR_BIN/psql" -XAt -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$DR_PORT" -d "$DR_DB")
deadline=$(( $(date +%s) + DR_TIMEOUT ))
if [ -n "$UNIT" ]; then
  # The unit (Type=notify) is active once recovery ended and the instance was promoted: not waited for here.
  systemctl daemon-reload
  systemctl start --no-block "$UNIT" || fail "the unit $UNIT could not be started"
  begun=$(date +%s)
  down() {
    local state; state=$(systemctl show -P ActiveState "$UNIT")
    [ "$state" = failed ] || { [ "$state" = inactive ] && [ "$(date +%s)" -gt $(( begun + 5 )) ]; }
  }
  why() { journalctl -u "$UNIT" -n 40 --no-pager -o cat 2>/dev/null | grep -E 'FATAL|PANIC' | tail -n 2 | tr '\n' ' '; }
else
  as_pg "$DR_BIN/pg_ctl" -D "$DR_DATA" -l "$DR_DIR/postgresql.log" -w -t "$DR_TIMEOUT" start >/dev/null 2>&1 \
    || fail "the scratch instance did not start: $(grep -E 'FATAL|PANIC' "$DR_DIR/postgresql.log" | tail -n 2 | tr '\n' ' ')"
  down() { ! as_pg "$DR_BIN/pg_ctl" -D "$DR_DATA" status >/dev/null 2>&1; }
  why() { grep -E 'FATAL|PANIC' "$DR_DIR/postgresql.log" | tail -n 2 | tr '\n' ' '; }
fi
until [ "$(as_pg "${psql[@]}" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
  down && fail "the restored instance stopped before it recovered to the target: $(why)"
  [ "$(date +%s)" -lt "$deadline" ] || fail "the restored instance did not finish recovery within $DR_TIMEOUT s"
  sleep 0.2
done
echo "recovery_s $(since "$t")"
# The drill: when the newest transaction the restore holds was committed (PostgreSQL logs it as recovery ends).
if [ -n "$UNIT" ]; then
  for _ in $(seq 20); do
    last=$(journalctl -u "$UNIT" --since "@$begun" -o cat --no-pager 2>/dev/null | sed -n 's/.*last completed transaction was at log time //p' | tail -n 1)
    [ -n "$last" ] && break
    sleep 0.1
  done
  [ -n "$last" ] && echo "last_xact $(as_pg "${psql[@]}" -c "SELECT extract(epoch FROM timestamptz '$last')")"
fi

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
# The drill's writer: how many of its rows were restored, the highest sequence number and the newest commit time.
if [ -n "${DR_WRITES_RUN:-}" ]; then
  writes=$(as_pg "${psql[@]}" -c "SELECT count(*) || ' ' || coalesce(max(seq), 0) || ' ' || coalesce(extract(epoch FROM max(ts)), 0)
    FROM dsops_drill_writes WHERE run = '$DR_WRITES_RUN'" 2>&1) || writes="0 0 0"
  echo "writes $writes"
fi
echo "address $(hostname -I | awk '{ print $1 }')"
