"""Every job template of the controller role, launched the way AWX launches it - ``ansible_runner`` on a private data
dir of its own (tests/helpers/awx_job.py): the project copied, the inventory as an AWX inventory script (the example
production inventory's groups and group_vars, no vault file: secrets come from credentials), survey answers as
strings in env/extravars, the machine credential's key in env/ssh_key. The hosts are a closed port: contacting one
shows as an unreachable event, so what is refused before any contact is told apart from what got through.

Proven per template: with its survey's default answers and its credentials the job passes every check and goes on to
contact the hosts; a survey answer of the wrong type, a missing credential, an unwritable report location are each
refused before any host is contacted, with a message naming what to fix; no secret is in any event or artifact file.
"""
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / ".build" / "collections"))
from helpers.awx_job import AwxJob  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.dealerscope.ops.plugins.filter.controller_plan import controller_plan  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles" / "controller" / "defaults" / "main.yml").read_text())
SPECS = {p.parent.parent.name: yaml.safe_load(p.read_text()) for p in (ROOT / "roles").glob("*/meta/argument_specs.yml")}
PLAYBOOKS = sorted("playbooks/%s" % p.name for p in (ROOT / "playbooks").glob("*.yml"))
SLACK_SECRET = "https://hooks.slack.com/services/T0AWX/B0AWX/awx-webhook-secret-51"
PAGER_SECRET = "rk-awx-credential-secret-52"
S3_SECRETS = {"backup_s3_key": "AKIAAWXJOBTESTKEY53", "backup_s3_key_secret": "awx-s3-secret-54", "backup_cipher_pass": "awx-cipher-55"}
# What each credential kind's injector sets (roles/controller: the credential types), as AWX sends it.
INJECTED = {"notifications": {"vault_slack_webhook_url": SLACK_SECRET, "vault_pager_routing_key": PAGER_SECRET}, "s3": S3_SECRETS}
SECRETS = [SLACK_SECRET, "awx-webhook-secret-51", PAGER_SECRET] + list(S3_SECRETS.values())


def plan():
    settings = {key[len("controller_"):]: value for key, value in DEFAULTS.items()}
    settings.update(project_scm_url="https://git.example.com/ops.git", inventory="Production",
                    credential_names={"machine": "SSH", "notifications": "Notify", "s3": "S3"})
    return controller_plan(settings, argument_specs=SPECS, playbooks=PLAYBOOKS)


TEMPLATES = dict((entry["key"], entry) for entry in DEFAULTS["controller_job_templates"])
PLANNED = dict((entry["key"], planned) for entry, planned in zip(DEFAULTS["controller_job_templates"], plan()["job_templates"]))


# Answers a launch gives where keeping the default is not enough: the questions AWX requires an answer to, and the
# patch plan (outside its maintenance window a patch run is refused before any host is contacted, as it should be).
ANSWERS = {"deploy": {"deploy_version": "2.4.1"}, "dr_drill": {"dr_drill_confirm": "db1.example.com"},
           "patch": {"patching_plan_only": "true"}}


def survey_answers(key):
    """What AWX sends for a launch that keeps every default: strings (a multiselect joined by newlines)."""
    answers = dict((question["variable"], str(question["default"])) for question in PLANNED[key]["survey_spec"]["spec"])
    required = [q["variable"] for q in PLANNED[key]["survey_spec"]["spec"] if q["required"] and q["default"] == ""]
    assert sorted(required) == sorted(v for v in ANSWERS.get(key, {}) if v in required), (key, required)
    answers.update(ANSWERS.get(key, {}))
    return answers


def wrong_answer(question):
    """An answer of the wrong type or out of range for ``question``."""
    if question["type"] in ("multiplechoice", "multiselect"):
        return "not-one-of-the-choices"
    if question["type"] in ("integer", "float"):
        return "many"
    return None


@pytest.fixture(scope="module", name="inventory")
def fixture_inventory(tmp_path_factory):
    """The example production inventory with every host at a closed port and the machine credential's key."""
    base = tmp_path_factory.mktemp("awx-inventory")
    shutil.copytree(ROOT / "inventories" / "production.example", base / "production")
    (base / "production" / "group_vars" / "all" / "vault.yml").unlink()  # AWX: the credentials inject the secrets
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    hosts = base / "production" / "hosts.yml"
    text = hosts.read_text()
    for name in ("lb1", "app1", "app2", "db1", "db2"):
        text = text.replace("%s.example.com:" % name, "%s.example.com: {ansible_host: 127.0.0.1, ansible_port: 1, "
                            "ansible_ssh_private_key_file: %s, ansible_ssh_common_args: '-o ConnectTimeout=3'}" % (name, key))
    hosts.write_text(text)
    return base / "production"


def job_for(key, inventory, tmp_path, answers=None, credentials=None):
    durable = tmp_path / "durable"
    extravars = dict(ops_report_dir=str(durable / "reports"))
    if key == "deploy":  # the release comes from a volume the execution environment mounts (docs/awx.md)
        (durable / "releases" / "2.4.1").mkdir(parents=True)
        extravars["deploy_artifact"] = str(durable / "releases" / "2.4.1")
    if key == "firewall":  # the hosts here are 127.0.0.1 (a connection setting): zone addresses come from their facts
        extravars["firewall_address_source"] = "facts"
    extravars.update(survey_answers(key) if answers is None else answers)
    kinds = TEMPLATES[key]["credentials"] if credentials is None else credentials
    for kind in kinds:
        extravars.update(INJECTED.get(kind, {}))
    return AwxJob(tmp_path / "jobs", TEMPLATES[key]["playbook"][len("playbooks/"):-len(".yml")], inventory, extravars)


def unreachable(result):
    return sorted(set(event["event_data"]["host"] for event in result.events if event["event"] == "runner_on_unreachable"))


def refusal(result):
    """The first failure's message, with its loop items' (a refused job fails on the controller, before any contact)."""
    failed = [event["event_data"]["res"] for event in result.events if event["event"] == "runner_on_failed"]
    assert failed, "no failure (rc=%s): %s" % (result.rc, result.stdout[-3000:])
    res = failed[0]
    return " | ".join([str(res.get("msg", ""))] + [str(item.get("msg", "")) for item in res.get("results", []) if item.get("failed")])


def assert_no_secret(result):
    text = result.artifact_text()
    for secret in SECRETS:
        assert secret not in text, "a secret is in the job's events or artifacts"


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_the_template_defaults_and_credentials_get_the_job_to_the_hosts(key, inventory, tmp_path):
    result = job_for(key, inventory, tmp_path).run()
    assert unreachable(result), "%s: refused before contacting any host: %s" % (key, result.stdout[-3000:])
    assert_no_secret(result)


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_a_wrong_survey_answer_is_refused_before_any_host_is_contacted(key, inventory, tmp_path):
    questions = [q for q in PLANNED[key]["survey_spec"]["spec"] if wrong_answer(q) is not None]
    assert questions, "%s: no question can be answered wrongly" % key
    question = questions[0]
    answers = dict(survey_answers(key), **{question["variable"]: wrong_answer(question)})
    result = job_for(key, inventory, tmp_path, answers=answers).run()
    assert result.rc != 0 and not unreachable(result), result.stdout[-3000:]
    assert question["variable"] in refusal(result)
    assert_no_secret(result)


@pytest.mark.parametrize("key", sorted(k for k in TEMPLATES if "notifications" in TEMPLATES[k]["credentials"]))
def test_a_missing_notifications_credential_is_refused_before_any_host_is_contacted(key, inventory, tmp_path):
    kinds = [kind for kind in TEMPLATES[key]["credentials"] if kind != "notifications"]
    result = job_for(key, inventory, tmp_path, credentials=kinds).run()
    assert result.rc != 0 and not unreachable(result), result.stdout[-3000:]
    assert "'vault_slack_webhook_url' is undefined" in refusal(result)  # the role's argument validation says it


@pytest.mark.parametrize("key", sorted(k for k in TEMPLATES if "s3" in TEMPLATES[k]["credentials"]))
def test_a_missing_s3_credential_is_refused_before_any_host_is_contacted(key, inventory, tmp_path):
    kinds = [kind for kind in TEMPLATES[key]["credentials"] if kind != "s3"]
    result = job_for(key, inventory, tmp_path, credentials=kinds).run()
    assert result.rc != 0 and not unreachable(result), result.stdout[-3000:]
    message = refusal(result)
    assert "backup_s3_key" in message and "DealerScope S3 backup" in message, message


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_an_unwritable_report_location_is_refused_before_any_host_is_contacted(key, inventory, tmp_path):
    job = job_for(key, inventory, tmp_path)
    job.extravars["ops_report_dir"] = "/proc/version/reports"
    result = job.run()
    assert result.rc != 0 and not unreachable(result), result.stdout[-3000:]
    assert "/proc/version" in refusal(result)
