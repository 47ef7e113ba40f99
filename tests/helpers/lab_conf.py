"""The lab's podman configuration in its per-user home (see lab/bin/podman-conf.sh): tests that run
podman use this path, so containers they create can restart after the checkout is gone."""
import os
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "lab" / "containers.conf"


def containers_conf():
    """Install lab/containers.conf under ~/.config/dealerscope-ops when it differs; return that path."""
    target = pathlib.Path(os.path.expanduser("~")) / ".config" / "dealerscope-ops" / "containers.conf"
    if not target.exists() or target.read_bytes() != SOURCE.read_bytes():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(SOURCE, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    return str(target)
