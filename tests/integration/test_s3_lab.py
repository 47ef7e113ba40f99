"""lab/bin/s3.sh: the lab's object storage in three regions (moto behind nginx as the TLS terminator).

Objects go in and out over TLS with the store's own CA; a region taken down refuses connections while its objects
are kept, and has them again when brought back; `stop` frees the store's ports even when another checkout (another
state directory) started it, so a new store starts empty."""
import os
import pathlib
import socket
import subprocess

import boto3
import pytest
from botocore.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
OFFSET = 500  # ports 9941-9943 and 9701-9703: not those of molecule/backup, which may run at the same time


def s3_sh(state, *args):
    env = dict(os.environ, LAB_S3_DIR=str(state), LAB_S3_LISTEN="127.0.0.1", LAB_S3_PORT_OFFSET=str(OFFSET))
    return subprocess.run([str(ROOT / "lab" / "bin" / "s3.sh"), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def client(state, port, region):
    return boto3.client("s3", endpoint_url="https://127.0.0.1:%d" % (port + OFFSET), region_name=region, verify=str(state / "ca.pem"),
                        aws_access_key_id="k", aws_secret_access_key="s", config=Config(retries={"max_attempts": 1}, connect_timeout=3))


def refused(port):
    with socket.socket() as sock:
        sock.settimeout(3)
        return sock.connect_ex(("127.0.0.1", port + OFFSET)) != 0


@pytest.fixture
def stores(tmp_path):
    first, second = tmp_path / "checkout-a" / "s3", tmp_path / "checkout-b" / "s3"
    yield first, second
    s3_sh(second, "stop")


def test_regions_serve_over_tls_go_down_and_up_and_stop_frees_another_checkouts_store(stores):
    first, second = stores
    started = s3_sh(first, "start")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split("\n")[:3] == ["region eu-west-1 127.0.0.1 %d" % (9441 + OFFSET), "region eu-central-1 127.0.0.1 %d" % (9442 + OFFSET),
                                              "region us-east-1 127.0.0.1 %d" % (9443 + OFFSET)], started.stdout
    central = client(first, 9442, "eu-central-1")
    central.create_bucket(Bucket="lab-test-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    central.put_object(Bucket="lab-test-bucket", Key="wal/0001", Body=b"segment")
    down = s3_sh(first, "down", "eu-central-1")
    assert down.returncode == 0 and refused(9442) and not refused(9441), down.stderr
    assert s3_sh(first, "down", "mars-1").returncode == 2
    up = s3_sh(first, "up", "eu-central-1")
    assert up.returncode == 0, up.stderr
    assert client(first, 9442, "eu-central-1").get_object(Bucket="lab-test-bucket", Key="wal/0001")["Body"].read() == b"segment"
    # another checkout: its stop frees the ports of the store the first one left running; its own store starts empty
    assert s3_sh(second, "stop").returncode == 0 and refused(9441) and refused(9442) and refused(9443)
    assert s3_sh(second, "start").returncode == 0
    assert "lab-test-bucket" not in [b["Name"] for b in client(second, 9442, "eu-central-1").list_buckets()["Buckets"]]
