"""Helpers for the backup scenarios' verifiers: the lab's object storage (lab/bin/s3.sh) and pgBackRest on db1."""
import contextlib
import json
import os
import subprocess

import boto3
from botocore.config import Config

from helpers.runbook import EPHEMERAL, PROJECT, on, run_playbook

S3_DIR = PROJECT / ".build" / "s3"
REGIONS = {"eu-west": ("eu-west-1", 9441), "eu-central": ("eu-central-1", 9442), "us-east": ("us-east-1", 9443)}
FIGURES = PROJECT / "tests" / "output" / "molecule" / "backup_figures.json"


def secret(name):
    return (EPHEMERAL / "lab" / "secrets" / name).read_text().strip()


def bucket(region):
    return "dealerscope-backups-" + region


def s3(region):
    name, port = REGIONS[region]
    return boto3.client("s3", endpoint_url="https://10.213.48.1:%d" % port, region_name=name, verify=str(S3_DIR / "ca.pem"),
                        aws_access_key_id="dslab-backup", aws_secret_access_key=secret("s3-key-secret"),
                        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30))


def keys(region, prefix):
    pages = s3(region).get_paginator("list_objects_v2").paginate(Bucket=bucket(region), Prefix=prefix)
    return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}


def info():
    """pgbackrest info of db1, as pgBackRest reports it."""
    return json.loads(on("db1", "runuser -u postgres -- pgbackrest --stanza=dealerscope --output=json info"))[0]


def record(**figures):
    current = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    current.update(figures)
    FIGURES.write_text(json.dumps(current, indent=1))


def backup(*args, **extra):
    return run_playbook("dealerscope.ops.backup", *args, extra_vars=extra, timeout=600)


def s3_sh(*args):
    env = dict(os.environ, LAB_S3_DIR=str(S3_DIR), LAB_S3_LISTEN="10.213.48.1")
    result = subprocess.run([str(PROJECT / "lab" / "bin" / "s3.sh"), *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextlib.contextmanager
def region_down(region):
    s3_sh("down", REGIONS[region][0])
    try:
        yield
    finally:
        s3_sh("up", REGIONS[region][0])


def flip_bytes(region):
    """Damage one region's copy as a bad disk or a bad transfer would: 16 bytes in the middle of its largest data file
    are inverted in place. Returns the object's key."""
    stored = keys(region, "dealerscope/backup/dealerscope/")
    victim = max((key for key in stored if "/pg_data/" in key), key=stored.get)
    client = s3(region)
    data = bytearray(client.get_object(Bucket=bucket(region), Key=victim)["Body"].read())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    client.put_object(Bucket=bucket(region), Key=victim, Body=bytes(data))
    return victim
