"""bench/restore.sh's measurements, on Molecule scenario dr's hosts (see there)."""
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers.molecule_ssh import ssh  # noqa: E402  pylint: disable=wrong-import-position
from helpers.runbook import latest_report, run_playbook  # noqa: E402  pylint: disable=wrong-import-position

ROW_BYTES = 300  # a ballast row as stored (256 bytes of text and the tuple's overhead)


def on(host, command, timeout=1800):
    result = ssh(host, command, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit("%s: %s failed: %s" % (host, command, result.stderr[-2000:]))
    return result.stdout.strip()


def timed(host, command):
    start = time.monotonic()
    out = on(host, command)
    return time.monotonic() - start, out


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    psql = "runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d dealerscope -c "
    rows = size_mb * 1024 * 1024 // ROW_BYTES
    grow_s, dummy = timed("db1", psql + "\"CREATE TABLE bench_ballast (id bigserial PRIMARY KEY, payload text); "
                          "INSERT INTO bench_ballast (payload) SELECT md5(g::text) || repeat(md5((g * 7)::text), 7) "
                          "FROM generate_series(1, %d) g\"" % rows)
    db_bytes = int(on("db1", psql + "\"SELECT pg_database_size('dealerscope')\""))
    cluster_bytes = int(on("db1", "du -sb /var/lib/postgresql/15/main | cut -f1"))
    backup_s, dummy = timed("db1", "runuser -u postgres -- pgbackrest --stanza=dealerscope --repo=1 --type=full backup")
    label = on("db1", "runuser -u postgres -- pgbackrest --stanza=dealerscope --repo=1 --output=json info"
               " | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"backup\"][-1][\"label\"])'")
    repo_bytes = int(on("db1", "runuser -u postgres -- pgbackrest --stanza=dealerscope --repo=1 --set=%s --output=json info"
                        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"backup\"][-1][\"info\"][\"repository\"][\"delta\"])'" % label))
    # The restore test, from the same region and backup (dr_restore_set: restored as it ended, as the bare command does).
    start = time.monotonic()
    result = run_playbook("dealerscope.ops.restore_test", extra_vars={"dr_restore_region": "eu-west", "dr_restore_set": label}, timeout=3600)
    wall_s = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit("restore test failed: %s" % result.stdout[-3000:])
    timings = latest_report("restore_test")[0]["meta"]["timings"]
    # The floor: the bare restore command, the same backup, the same host, into an empty directory.
    bare_s, dummy = timed("db2", "rm -rf /var/lib/dealerscope-restore/bare && install -d -o postgres -g postgres -m 0700 "
                          "/var/lib/dealerscope-restore/bare && runuser -u postgres -- pgbackrest --stanza=dealerscope --repo=1 "
                          "--pg1-path=/var/lib/dealerscope-restore/bare --set=%s --type=immediate --archive-mode=off restore" % label)
    on("db2", "rm -rf /var/lib/dealerscope-restore/bare")
    figures = {
        "size_mb_asked": size_mb, "database_bytes": db_bytes, "cluster_bytes": cluster_bytes, "grow_s": round(grow_s, 1),
        "backup_s": round(backup_s, 1), "backup_mb_s": round(cluster_bytes / 1048576 / backup_s, 1), "repo_bytes": repo_bytes,
        "restore_step_s": timings["restore_s"], "bare_restore_s": round(bare_s, 1),
        "restore_mb_s": round(cluster_bytes / 1048576 / timings["restore_s"], 1),
        "restore_step_overhead_pct": round(100 * (timings["restore_s"] - bare_s) / bare_s, 1),
        "recovery_s": timings["recovery_s"], "verify_s": timings["verify_s"], "run_total_s": timings["total_s"],
        "playbook_wall_s": round(wall_s, 1),
        "run_vs_bare_pct": round(100 * (timings["total_s"] - bare_s) / bare_s, 1),
    }
    out = ROOT / "tests" / "output" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "restore.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    print("backup %.0f MB/s, restore %.0f MB/s; the restore test's restore step %.1f s vs the bare command %.1f s (%+.1f %%); "
          "the whole run %.1f s (recovery %.1f s, pg_dump + amcheck %.1f s, catalog verify and smoke test the rest)" % (
              figures["backup_mb_s"], figures["restore_mb_s"], timings["restore_s"], bare_s, figures["restore_step_overhead_pct"],
              timings["total_s"], timings["recovery_s"], timings["verify_s"]))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ANSIBLE_FORCE_COLOR", "0")
    sys.exit(main())
