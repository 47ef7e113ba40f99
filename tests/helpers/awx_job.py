"""A playbook run the way AWX runs a job: ``ansible_runner`` on a private data dir of its own.

The private data dir is laid out as AWX lays it out for a job: ``project/`` (a copy of the project: ansible.cfg and
playbooks/), ``inventory/hosts`` (an executable inventory script printing the inventory as JSON - groups and
host variables - as AWX writes it, sliced like AWX slices it), ``env/extravars`` (survey answers are strings),
``env/envvars`` (the collections path AWX's project sync installs into) and ``env/ssh_key`` (the machine credential's
key: runner loads it into an ssh-agent; no host variable names a key file). Nothing of a job's directory is kept:
only what the extra variables point at (the report and notification directories) outlives the job.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import ansible_runner

PROJECT = pathlib.Path(__file__).resolve().parents[2]
KEY_VARS = ("ansible_ssh_private_key_file", "ansible_private_key_file")


def without_key(hostvars):
    """A host's variables as an AWX inventory holds them: the key comes from the machine credential (ssh-agent), so
    no variable names a key file, and no option keeps ssh from the agent's key."""
    kept = dict((name, value) for name, value in hostvars.items() if name not in KEY_VARS)
    for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if isinstance(kept.get(name), str):
            kept[name] = " ".join(kept[name].replace("-o IdentitiesOnly=yes", "").split())
    return kept


def inventory_data(inventory):
    """The inventory as AWX holds it: groups, and each host's variables (group_vars resolved)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"))
    proc = subprocess.run([str(PROJECT / ".venv" / "bin" / "ansible-inventory"), "-i", str(inventory), "--list"],
                          capture_output=True, text=True, timeout=120, check=True, env=env, cwd=str(PROJECT))
    return json.loads(proc.stdout)


def host_names(data):
    return sorted(data["_meta"]["hostvars"])


def key_file(data):
    """The one private key the hosts use (the machine credential's key)."""
    keys = set(str(hostvars.get(name)) for hostvars in data["_meta"]["hostvars"].values() for name in KEY_VARS if hostvars.get(name))
    assert len(keys) == 1, "the hosts should share one key (one machine credential), got %s" % sorted(keys)
    return keys.pop()


def sliced(data, number, count):
    """Slice ``number`` (1-based) of ``count``, as AWX cuts it: every count-th host by name, groups with only those."""
    keep = set(host_names(data)[number - 1::count])
    result = {"_meta": {"hostvars": dict((host, without_key(hostvars))
                                         for host, hostvars in data["_meta"]["hostvars"].items() if host in keep)}}
    for group, entry in data.items():
        if group == "_meta":
            continue
        entry = dict(entry)
        if "hosts" in entry:
            entry["hosts"] = [host for host in entry["hosts"] if host in keep]
        result[group] = entry
    return result


class AwxJob:
    """Jobs of one job template: each run gets a fresh private data dir under ``base``."""

    def __init__(self, base, playbook, inventory, extravars, job_id=1000, image=None, mounts=()):
        """With ``image``, every job runs in that execution environment image, as AWX runs it (podman, the private
        data dir at /runner, the collections only those of the image); ``mounts`` are the host paths the job may
        read and write (AWX's "paths to expose to isolated jobs": the durable report and notification location)."""
        self.base = pathlib.Path(base)
        self.playbook = playbook
        self.image = image
        self.mounts = tuple(str(path) for path in mounts)
        self.data = inventory_data(inventory)
        self.key = key_file(self.data)
        self.extravars = dict((name, value if isinstance(value, (dict, list)) else str(value)) for name, value in extravars.items())
        self.job_id = job_id

    def prepare(self, slice_number=1, slice_count=1, **extra):
        self.job_id += 1
        private = self.base / ("job%d" % self.job_id)
        (private / "project").mkdir(parents=True)
        shutil.copy(PROJECT / "ansible.cfg", private / "project" / "ansible.cfg")
        shutil.copytree(PROJECT / "playbooks", private / "project" / "playbooks")
        (private / "inventory").mkdir()
        script = private / "inventory" / "hosts"
        script.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(%r))\n" % (
            sliced(self.data, slice_number, slice_count),))
        script.chmod(0o700)
        (private / "env").mkdir()
        values = dict(self.extravars, awx_job_id=self.job_id, awx_job_template_name="DealerScope %s" % self.playbook,
                      awx_user_name="oncall")
        values.update(extra)
        (private / "env" / "extravars").write_text(json.dumps(values))
        if self.image:
            # AWX's own setting in a container: the project sync's collections first (none here), then the image's
            envvars = {"ANSIBLE_COLLECTIONS_PATH": "/runner/requirements_collections:~/.ansible/collections:/usr/share/ansible/collections"}
        else:
            envvars = {"ANSIBLE_COLLECTIONS_PATH": str(PROJECT / ".build" / "collections"),
                       "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        (private / "env" / "envvars").write_text(json.dumps(dict(envvars, ANSIBLE_FORCE_COLOR="0")))
        shutil.copy(self.key, private / "env" / "ssh_key")
        os.chmod(private / "env" / "ssh_key", 0o600)
        return private

    def _runner_args(self, private, job_type="run"):
        """A job template's job type "check" is ansible-playbook's --check (AWX passes it on the command line)."""
        args = dict(private_data_dir=str(private), playbook="playbooks/%s.yml" % self.playbook, quiet=True, timeout=900)
        if job_type == "check":
            args["cmdline"] = "--check"
        if self.image:
            from helpers.lab_conf import containers_conf  # pylint: disable=import-outside-toplevel
            os.environ["CONTAINERS_CONF"] = containers_conf()  # podman as the lab runs it (runc)
            # --user=0: rootful podman's equivalent of the keep-id AWX's rootless podman uses (the job's files are its
            # launcher's); the host's network: the lab's hosts and the local receiver, as a controller node reaches them
            args.update(process_isolation=True, process_isolation_executable="podman", container_image=self.image,
                        container_options=["--network=host", "--user=0"],
                        container_volume_mounts=[self._mount(entry) for entry in self.mounts])
        return args

    @staticmethod
    def _mount(entry):
        """"PATH" (read-write) or "PATH:ro", at the same path in the container."""
        path, dummy, options = entry.partition(":")
        return "%s:%s:%s" % (path, path, options or "rw")

    def run(self, job_type="run", **extra):
        private = self.prepare(**extra)
        runner = ansible_runner.run(**self._runner_args(private, job_type))
        return Result(runner, private)

    def run_sliced(self, count, workflow_job_id, **extra):
        """One sliced job: ``count`` jobs at once, each on its slice, in one workflow job (as AWX runs them); the job
        template's extra variables say how many slices there are (the controller role sets them with job_slice_count)."""
        started = []
        for number in range(1, count + 1):
            private = self.prepare(number, count, awx_workflow_job_id=workflow_job_id, runbook_end_slices=str(count), **extra)
            thread, runner = ansible_runner.run_async(**self._runner_args(private))
            started.append((thread, runner, private))
        results = []
        for thread, runner, private in started:
            thread.join(timeout=700)
            results.append(Result(runner, private))
        return results


def scenario_job(base, playbook, **extravars):
    """Jobs of ``playbook``'s job template on a Molecule scenario's hosts, with the scenario's extra variables (its
    report and notification directories are the durable location) plus ``extravars`` (survey answers)."""
    from helpers.runbook import inventory_dir, scenario_extra_vars  # pylint: disable=import-outside-toplevel
    return AwxJob(base, playbook, inventory_dir(), dict(scenario_extra_vars(), **extravars))


def lab_secrets():
    """Every secret the lab generated for a scenario (database, replication and S3 passwords, the backup cipher...)."""
    from helpers.runbook import EPHEMERAL  # pylint: disable=import-outside-toplevel
    found = [path.read_text().split()[0] for path in sorted((EPHEMERAL / "lab" / "secrets").glob("*")) if path.is_file() and path.read_text().strip()]
    assert found, "the scenario's lab generated no secret under %s" % (EPHEMERAL / "lab" / "secrets")
    return found


def assert_no_secret(results, *secrets):
    """No secret in any event or artifact file of any of the jobs (what AWX stores and shows); by default the lab's."""
    secrets = secrets or tuple(lab_secrets())
    for result in results:
        text = result.artifact_text()
        for secret in secrets:
            assert secret and secret not in text, "a secret (%d chars) is in the artifacts of %s" % (len(secret), result.private)


def assert_changed_nothing(result, runbook, *secrets):
    """A job that changed nothing but its report: rc 0 and successful, no changed task outside the runbook ending,
    stats ``ok`` with no failed host, no secret (by default the lab's) in any event or artifact. Returns the stats."""
    assert (result.rc, result.status) == (0, "successful"), result.stdout[-3000:]
    assert result.changed_tasks(skip_ending=True) == [], result.changed_tasks(skip_ending=True)
    outcome = result.outcome(runbook)
    assert (outcome["status"], outcome["failed_hosts"]) == ("ok", []), outcome
    assert_no_secret([result], *secrets)
    return outcome


class Result:
    """What AWX would show of a job: rc, status, events, the stats artifact, the failed hosts."""

    def __init__(self, runner, private):
        self.rc = runner.rc
        self.status = runner.status
        self.events = list(runner.events)
        self.private = private
        self.stdout = "".join(event.get("stdout", "") + "\n" for event in self.events)

    def stats(self):
        found = [event["event_data"] for event in self.events if event["event"] == "playbook_on_stats"]
        assert found, "no playbook_on_stats event (rc=%s, status=%s): %s" % (self.rc, self.status, self.stdout[-3000:])
        return found[0]

    def outcome(self, runbook):
        return self.stats()["artifact_data"]["dealerscope_%s" % runbook]

    def _changed(self):
        """The event data of every task result reported changed."""
        return [event["event_data"] for event in self.events
                if event["event"] == "runner_on_ok" and event.get("event_data", {}).get("res", {}).get("changed")]

    def changed_tasks(self, skip_ending=False):
        """(task, host) pairs the job reported changed, named as the default callback names them ("role : task");
        with ``skip_ending``, without the runbook ending's tasks (its report changes at every run)."""
        found = []
        for data in self._changed():
            role = data.get("role")
            if skip_ending and role == "runbook_end":
                continue
            found.append(("dealerscope.ops.%s : %s" % (role, data["task"]) if role else data["task"], data["host"]))
        return found

    def host_changes(self):
        """Changed task results per managed host, counted where the change happened (a task delegated to lb1 counts for
        lb1, named by its address as the default callback names it); results on the controller (reports,
        notifications: a local connection) do not count."""
        rows = {}
        for data in self._changed():
            delegated = data["res"].get("_ansible_delegated_vars") or {}
            if delegated.get("ansible_connection") == "local":
                continue  # on the controller
            where = delegated.get("ansible_delegated_host") or delegated.get("ansible_host") or data["host"]
            rows[where] = rows.get(where, 0) + 1
        return rows

    def failed_hosts(self):
        return sorted(set(event["event_data"]["host"] for event in self.events if event["event"] == "runner_on_failed"
                          and not event["event_data"].get("ignore_errors")))

    def artifact_text(self):
        """Every event and artifact file of the job, as text (what AWX stores and shows)."""
        return "\n".join(path.read_text(errors="replace") for path in (self.private / "artifacts").rglob("*") if path.is_file())
