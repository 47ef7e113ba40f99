#!/usr/bin/env bash
# Build the execution environment image from execution-environment.yml, on the lab's own Debian image (lab/ee).
#   lab/bin/ee-build.sh [TAG]          # default tag: localhost/dealerscope-ops-ee:lab
# The same definition as execution-environment.yml (the same collection build, Python and system requirements via
# ansible-builder's introspection); only what this machine cannot reach is replaced, in a lab variant written to
# .build/ee-lab/execution-environment.yml:
# - the base image: lab/ee/Containerfile on localhost/dealerscope-lab:debian12 (the usual one is in quay.io);
# - the build trusts what this host trusts: its CA bundle is mounted into the build steps (not kept in the image);
# - Galaxy: the dependency collections come from the ansible package in the venv, as collection tarballs
#   (their MANIFEST.json and FILES.json as installed), installed with --offline.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
tag=${1:-localhost/dealerscope-ops-ee:lab}
work=$here/.build/ee-lab
started=$(date +%s)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HOME/.config/dealerscope-ops/containers.conf}
rm -rf "$work" && mkdir -p "$work/collections" "$work/dist"

# the base: rebuilt only when its recipe or the lab image changed
lab_image=localhost/dealerscope-lab:debian12
base_id=$( (cat "$here/lab/ee/Containerfile" "$here/lab/ee/ee-pkgmgr"; podman image inspect --format '{{.Id}}' "$lab_image") | sha256sum | cut -c1-16)
base=localhost/dealerscope-ee-base:$base_id
if ! podman image exists "$base"; then
    podman build -q --build-arg LAB_IMAGE="$lab_image" -t "$base" "$here/lab/ee" >/dev/null
fi

"$here/.venv/bin/ansible-galaxy" collection build --force --output-path "$work/dist" "$here" >/dev/null
cp "$work"/dist/dealerscope-ops-*.tar.gz "$work/collections/dealerscope-ops.tar.gz"

"$here/.venv/bin/python" - "$here" "$work" "$base" "$tag" <<'PY'
import hashlib, io, json, pathlib, sys, tarfile, yaml
here, work, base, tag = (pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4])
import ansible_collections
installed = pathlib.Path(ansible_collections.__path__[0])
ee = yaml.safe_load((here / "execution-environment.yml").read_text())
# what the definition names, and what the collection depends on (galaxy.yml): Galaxy would resolve those itself
wanted = [entry["name"] for entry in ee["dependencies"]["galaxy"]["collections"] if entry.get("type") != "file"]
wanted += sorted(set(yaml.safe_load((here / "galaxy.yml").read_text())["dependencies"]) - set(wanted))
collections = [{"name": "collections/dealerscope-ops.tar.gz", "type": "file"}]
for fqcn in wanted:
    namespace, name = fqcn.split(".")
    source = installed / namespace / name
    version = json.loads((source / "MANIFEST.json").read_text())["collection_info"]["version"]
    target = work / "collections" / ("%s-%s-%s.tar.gz" % (namespace, name, version))
    # the ansible package leaves out some files its FILES.json lists (CI configuration): the manifest is re-written
    # for what is installed, as ansible-galaxy checks every listed file against its checksum
    paths = [path for path in sorted(source.rglob("*")) if "__pycache__" not in path.parts and path.suffix != ".pyc"
             and path.name not in ("MANIFEST.json", "FILES.json")]
    files = [{"name": ".", "ftype": "dir", "chksum_type": None, "chksum_sha256": None, "format": 1}]
    for path in paths:
        entry = {"name": str(path.relative_to(source)), "ftype": "dir" if path.is_dir() else "file",
                 "chksum_type": None if path.is_dir() else "sha256", "format": 1,
                 "chksum_sha256": None if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()}
        files.append(entry)
    files_json = json.dumps({"files": files, "format": 1}, indent=4).encode()
    manifest = json.loads((source / "MANIFEST.json").read_text())
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    with tarfile.open(target, "w:gz") as tar:
        for name, data in (("MANIFEST.json", json.dumps(manifest, indent=4).encode()), ("FILES.json", files_json)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for path in paths:
            tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
    collections.append({"name": "collections/" + target.name, "type": "file"})
ee["dependencies"]["galaxy"]["collections"] = collections
ee["dependencies"]["python_interpreter"] = {"python_path": "/opt/ee/bin/python3"}
ee["images"]["base_image"]["name"] = base
ee["additional_build_files"] = [{"src": str(work / "collections"), "dest": "collections"}]
ee["build_arg_defaults"] = {"ANSIBLE_GALAXY_CLI_COLLECTION_OPTS": "--offline"}
ee["options"]["package_manager_path"] = "/usr/local/bin/ee-pkgmgr"
ee["options"]["tags"] = [tag]
(work / "execution-environment.yml").write_text(yaml.safe_dump(ee, sort_keys=False))
PY

"$here/.venv/bin/ansible-builder" build -f "$work/execution-environment.yml" -c "$work/context" --container-runtime podman \
    --extra-build-cli-args "--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro" -t "$tag" -v 1
# what earlier builds left: the images this tag replaced, bases of other recipes
podman image prune -f --filter label=ansible-execution-environment=true >/dev/null
podman images --format '{{.Repository}}:{{.Tag}}' localhost/dealerscope-ee-base | grep -vx "$base" | xargs -r podman rmi >/dev/null 2>&1 || true
echo "execution environment $tag ($(podman image inspect --format '{{.Id}}' "$tag" | cut -c1-12)) built in $(( $(date +%s) - started )) s"
