"""dealerscope.ops.db_migrate against db1's real PostgreSQL.

Order matters (pytest runs a file top to bottom): the converged database (version 2) is checked first; each test
leaves it at version 2 again.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from helpers.runbook import on, run_module  # noqa: E402

testinfra_hosts = ["localhost"]
MIGRATIONS = "/opt/dealerscope/migrations"
AS_POSTGRES = ("--become", "--become-user", "postgres")


def migrate(path=MIGRATIONS, *options, **args):
    args.setdefault("database", "dealerscope")
    return run_module("db1", "dealerscope.ops.db_migrate", dict(args, path=path), *(AS_POSTGRES + options))


def sql(query):
    return on("db1", "runuser -u postgres -- psql -XAt -d dealerscope -c \"%s\"" % query).strip()


def schema():
    return on("db1", "runuser -u postgres -- pg_dump --schema-only --no-owner -T dealerscope_schema_history dealerscope "
                     "| grep -v -e '^--' -e '^.restrict ' -e '^.unrestrict '")  # their key is random per dump


def scratch(name, files):
    """A migrations directory on db1 with `files` {name: sql}; returns its path."""
    path = "/opt/dealerscope/%s" % name
    on("db1", "rm -rf %s && mkdir -p %s" % (path, path))
    for filename, text in files.items():
        on("db1", "cat > %s/%s <<'EOF'\n%s\nEOF" % (path, filename, text))
    return path


def test_the_converged_database_has_both_migrations_and_no_null_score():
    assert sql("select string_agg(version::text || ':' || description, ',' order by version) from dealerscope_schema_history") \
        == "1:add_enhanced_score,2:vehicle_price_history"
    assert sql("select count(*) from vehicles where enhanced_score is null") == "0"
    assert sql("select count(*) > 0 from vehicles") == "t"
    assert sql("select indexname from pg_indexes where indexname = 'idx_vehicles_enhanced_score'") == "idx_vehicles_enhanced_score"
    result = migrate()
    assert result["changed"] is False and result["version"] == 2, result


def test_the_round_trip_leaves_the_schema_as_it_was():
    at_latest = schema()
    down = migrate(target="0")
    assert down["changed"] and [step["version"] for step in down["applied"]] == [2, 1], down
    assert schema() == on("db1", "cat /root/schema-before.sql"), "down to 0 must give back the schema from before any migration"
    up = migrate()
    assert [step["version"] for step in up["applied"]] == [1, 2] and schema() == at_latest


def test_check_mode_lists_the_pending_sql_and_changes_nothing():
    migrate(target="0")
    result = migrate(MIGRATIONS, "--check", "--diff")
    assert result["changed"] is True, result
    assert [(step["version"], step["direction"]) for step in result["pending"]] == [(1, "up"), (2, "up")], result["pending"]
    assert "ALTER TABLE vehicles ADD COLUMN enhanced_score" in result["pending"][0]["sql"]
    assert sql("select count(*) from dealerscope_schema_history") == "0"
    assert sql("select count(*) from information_schema.columns where table_name = 'vehicles' and column_name = 'enhanced_score'") == "0"
    assert migrate()["version"] == 2


def test_an_edited_migration_is_refused_until_repaired():
    up = MIGRATIONS + "/V1__add_enhanced_score.up.sql"
    on("db1", "cp %s /root/V1.up.sql && echo '-- reviewed 2026-11-27' >> %s" % (up, up))
    try:
        refused = migrate()
        assert refused.get("failed") and "edited after it was applied" in refused["msg"] and "V1" in refused["msg"], refused
        repaired = migrate(repair=True)
        assert repaired["changed"] and repaired["repaired"] == [1], repaired
        assert migrate()["changed"] is False
    finally:
        on("db1", "cp /root/V1.up.sql %s" % up)
    assert migrate(repair=True)["repaired"] == [1]  # the original file is accepted again


def test_two_concurrent_runs_migrate_once():
    path = scratch("migrations-slow", {
        "V1__slow_table.up.sql": "CREATE TABLE slow_table (id int); SELECT pg_sleep(3);",
        "V1__slow_table.down.sql": "DROP TABLE slow_table;",
    })
    results = []

    def run():
        results.append(migrate(path, history_table="slow_history"))

    threads = [threading.Thread(target=run) for _index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(result["changed"] for result in results) == [False, True], results
    assert sql("select count(*) from slow_history") == "1"
    migrate(path, history_table="slow_history", target="0")


def test_a_migration_without_a_down_script_blocks_rollback_past_it():
    path = scratch("migrations-oneway", {
        "V1__a.up.sql": "CREATE TABLE oneway_a (id int);", "V1__a.down.sql": "DROP TABLE oneway_a;",
        "V2__b.up.sql": "CREATE TABLE oneway_b (id int);",
    })
    assert migrate(path, history_table="oneway_history")["version"] == 2
    refused = migrate(path, history_table="oneway_history", target="0")
    assert refused.get("failed") and "no down script" in refused["msg"] and "V2" in refused["msg"], refused
    assert sql("select count(*) from oneway_history") == "2" and sql("select to_regclass('oneway_a') is not null") == "t"


def test_a_failing_verify_query_rolls_its_migration_back():
    path = scratch("migrations-badverify", {
        "V1__bad.up.sql": "CREATE TABLE badverify (id int);",
        "V1__bad.verify.sql": "SELECT count(*) = 1 FROM badverify;",
    })
    failed = migrate(path, history_table="badverify_history")
    assert failed.get("failed") and "V1" in failed["msg"] and "verify" in failed["msg"], failed
    assert sql("select to_regclass('badverify') is null") == "t"
    assert sql("select to_regclass('badverify_history') is null or (select count(*) = 0 from badverify_history)") == "t"


def test_a_directory_with_a_gap_is_refused_before_any_change():
    path = scratch("migrations-gap", {
        "V1__a.up.sql": "CREATE TABLE gap_a (id int);",
        "V3__c.up.sql": "CREATE TABLE gap_c (id int);",
    })
    refused = migrate(path, history_table="gap_history")
    assert refused.get("failed") and "gap" in refused["msg"], refused
    assert sql("select to_regclass('gap_a') is null and to_regclass('gap_history') is null") == "t"
