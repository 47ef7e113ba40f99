#!/usr/bin/env python
"""The DR drill's writer (dealerscope.ops.dr_drill): commits a row to dsops_drill_writes every interval with the
application's own database settings (DS_DB_* of the API's environment file) and prints one line per acknowledged
commit - "ack <seq> <commit time, epoch s>" - so the drill knows the last write the application saw committed
before the primary was lost. Reconnects after an error (printed as "error <epoch s> <message>"); runs until stopped
(the drill stops it; its unit's RuntimeMaxSec bounds it).

Arguments: run id, interval in milliseconds.
"""
import os
import sys
import time

import psycopg2


def connect():
    return psycopg2.connect(host=os.environ.get("DS_DB_HOST", "localhost"), port=int(os.environ.get("DS_DB_PORT", "5432")),
                            dbname=os.environ.get("DS_DB_NAME", "dealerscope"), user=os.environ.get("DS_DB_USER", "dealerscope"),
                            password=os.environ.get("DS_DB_PASSWORD", ""), connect_timeout=2, application_name="dsops-drill-writer")


def main():
    run, interval = sys.argv[1], int(sys.argv[2]) / 1000.0
    conn, seq = None, 0
    while True:
        try:
            if conn is None:
                conn = connect()
            with conn.cursor() as cur:
                cur.execute("INSERT INTO dsops_drill_writes (run, seq) VALUES (%s, %s) RETURNING extract(epoch FROM ts)", (run, seq + 1))
                committed = cur.fetchone()[0]
            conn.commit()
            seq += 1
            print("ack %d %.6f" % (seq, committed), flush=True)
        except psycopg2.Error as exc:
            print("error %.6f %s" % (time.time(), (str(exc).strip().splitlines() or [type(exc).__name__])[0]), flush=True)
            if conn is not None:
                try:
                    conn.close()
                except psycopg2.Error:
                    pass
            conn = None
            time.sleep(0.5)
            continue
        time.sleep(interval)


if __name__ == "__main__":
    main()
