#!/bin/sh
# dealerscope.ops patching - database pre- and post-check probe (read-only, runs as root).
# The PostgreSQL clusters of this host (Debian layout: /etc/postgresql/<version>/<cluster>/), whether each
# starts automatically (its start.conf), the state of its own unit postgresql@<version>-<cluster>.service
# (not postgresql.service: that wrapper stays active whether or not a cluster runs), and, for a running
# cluster, one query as postgres: SELECT 1, whether it is a standby, the status of its WAL receiver.
# One line per cluster, parsed by the dealerscope.ops.patch_db_checks filter:
#   cluster <TAB> version <TAB> cluster <TAB> start <TAB> unit <TAB> unit state <TAB> answer
cd / || exit 1  # psql as postgres warns (into the answer) when it cannot enter the current directory
etc=${DS_PATCHING_PG_ETC:-/etc/postgresql}  # another root only in tests
for conf in "$etc"/*/*/postgresql.conf; do
    [ -f "$conf" ] || continue
    dir=${conf%/postgresql.conf}
    name=${dir##*/}
    version=${dir%/*}
    version=${version##*/}
    start=$(sed -e 's/#.*//' "$dir/start.conf" 2>/dev/null | tr -d ' \t\r\n')
    start=${start:-auto}
    unit="postgresql@$version-$name.service"
    state=$(systemctl is-active "$unit" 2>/dev/null)
    state=${state:-unknown}
    answer="not queried (unit $state)"
    if [ "$start" = auto ] && [ "$state" = active ]; then
        answer=$(PGCONNECT_TIMEOUT=5 PGOPTIONS='-c statement_timeout=5000' timeout 15 runuser -u postgres -- \
            psql --cluster "$version/$name" -X -A -t -q -F '|' -d postgres \
            -c "SELECT 1, pg_is_in_recovery(), coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'none')" 2>&1 \
            | tr '\t\r\n' '   ')
        answer=${answer:-no answer}
    fi
    printf 'cluster\t%s\t%s\t%s\t%s\t%s\t%s\n' "$version" "$name" "$start" "$unit" "$state" "$answer"
done
exit 0
