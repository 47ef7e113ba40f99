"""dealerscope.ops.controller: the AWX/Automation Controller objects of the runbooks, from the real playbook.

No AWX can run here (its images come from a registry this machine cannot reach, and it is not on PyPI), so the
proof stops at the API's door, with the real parts on this side of it:

* the playbook's preflight (`--tags preflight`) builds every object from the role's defaults and the roles' real
  argument specs; each object's parameters are validated against the argument spec of the installed awx.awx module
  that applies it (captured from the module itself), and each apply task passes every parameter the plan has;
* every survey answer a question can give (each choice, the default, the bounds) is accepted by the argument spec of
  the role entry point the template runs (a gate: a survey never offers what the role rejects);
* a full run reaches the awx.awx modules, which accept their parameters and fail only on the closed port where the
  controller would be, without showing the token or a credential's secret;
* bad settings stop in the preflight, before any request.
"""
import importlib
import json
import os
import pathlib
import socket
import subprocess
import threading

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
DEFAULTS = yaml.safe_load((ROOT / "roles" / "controller" / "defaults" / "main.yml").read_text())
CLOSED = "https://127.0.0.1:9"
TOKEN = "token-f3e1d9-never-shown"
SECRET = "slack-secret-7a51-never-shown"
SETTINGS = {
    "controller_project_scm_url": "https://git.example.com/dealerscope/ops.git",
    "controller_inventory": "DealerScope production",
    "controller_credential_names": {"machine": "DealerScope SSH", "notifications": "DealerScope notifications", "s3": "DealerScope S3 backup"},
}
MODULES = {"credential_types": "credential_type", "credentials": "credential", "projects": "project",
           "job_templates": "job_template", "workflows": "workflow_job_template", "schedules": "schedule"}


def playbook(extra, args=(), env=None):
    environment = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                       ANSIBLE_FORCE_COLOR="0", NO_COLOR="1", **(env or {}))
    for name in ("CONTROLLER_HOST", "CONTROLLER_OAUTH_TOKEN", "CONTROLLER_USERNAME", "CONTROLLER_PASSWORD"):
        if env is None or name not in env:
            environment.pop(name, None)
    command = [str(BIN / "ansible-playbook"), "-i", "localhost,", "playbooks/controller.yml", "-e", json.dumps(extra), *args]
    proc = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = {"plays": []}
    return proc, data


def results(data, name):
    """Host results of the tasks whose name contains `name`, and their loop items."""
    for play in data.get("plays", []):
        for task in play["tasks"]:
            if name in task["task"]["name"]:
                for result in task["hosts"].values():
                    yield result
                    yield from result.get("results", []) if isinstance(result.get("results"), list) else []


def awx_argument_spec(module):
    """The argument spec the installed awx.awx module builds (captured as it constructs its ControllerAPIModule)."""
    from ansible_collections.awx.awx.plugins.module_utils import controller_api  # pylint: disable=import-outside-toplevel

    class Captured(Exception):
        pass

    seen = {}

    def capture(self, argument_spec=None, **kwargs):  # pylint: disable=unused-argument
        seen["spec"] = argument_spec
        raise Captured()

    original = controller_api.ControllerAPIModule.__init__
    controller_api.ControllerAPIModule.__init__ = capture
    try:
        try:
            importlib.import_module("ansible_collections.awx.awx.plugins.modules.%s" % module).main()
        except Captured:
            pass
    finally:
        controller_api.ControllerAPIModule.__init__ = original
    return seen["spec"]


def awx_documented_suboptions(module, option):
    doc = yaml.safe_load(importlib.import_module("ansible_collections.awx.awx.plugins.modules.%s" % module).DOCUMENTATION)
    return doc["options"][option]["suboptions"]


@pytest.fixture(scope="module")
def plan():
    proc, data = playbook(dict(SETTINGS, controller_host=CLOSED, controller_oauthtoken=TOKEN), args=["--tags", "preflight"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    facts = [r["ansible_facts"]["__controller_plan"] for r in results(data, "checked and turned into module parameters")]
    assert facts, proc.stdout[-3000:]
    return facts[0]


def test_every_object_is_what_its_awx_module_accepts(plan):
    assert sorted(plan) == sorted(MODULES)
    assert [len(plan[kind]) for kind in ("job_templates", "workflows", "schedules")] == [9, 1, 6]
    for kind, module in MODULES.items():
        spec = awx_argument_spec(module)
        for params in plan[kind]:
            result = ArgumentSpecValidator(spec).validate(dict(params, state="present"))
            assert not result.error_messages, "%s %s: %s" % (module, params.get("name"), result.error_messages)


def test_workflow_nodes_use_only_what_the_module_documents(plan):
    node_options = awx_documented_suboptions("workflow_job_template", "workflow_nodes")
    for node in plan["workflows"][0]["workflow_nodes"]:
        assert set(node) <= set(node_options), set(node) - set(node_options)
        assert set(node["unified_job_template"]) <= set(node_options["unified_job_template"]["suboptions"])
        assert set(node["related"]) <= set(node_options["related"]["suboptions"])


def test_each_apply_task_passes_every_parameter_of_the_plan(plan):
    tasks = yaml.safe_load((ROOT / "roles" / "controller" / "tasks" / "apply.yml").read_text())[0]["block"]
    by_module = {}
    for task in tasks:
        module = [k for k in task if k.startswith("awx.awx.")][0]
        by_module[module.split(".")[-1]] = task[module]
    for kind, module in MODULES.items():
        for params in plan[kind]:
            missing = set(params) - set(by_module[module])
            assert not missing, "awx.awx.%s is never passed %s" % (module, sorted(missing))
            for key in params:
                assert "item.%s" % key in str(by_module[module][key]), "%s of awx.awx.%s is not the plan's" % (key, module)
    assert "controller_credentials" in str(by_module["credential"]["inputs"]), "the credentials' inputs come from the settings"
    assert [t.get("no_log") for t in tasks if "awx.awx.credential" in t] == [True]


def _answers(question):
    """Every value the question lets a user send, as the controller sends it."""
    if question["type"] in ("multiplechoice", "multiselect"):
        values = list(question["choices"])
    elif question["type"] in ("integer", "float"):
        values = [question["min"], question["max"]]
    else:
        values = ["x" * min(question["max"], 8)]
    if question["default"] != "":
        values.append(question["default"].split("\n") if question["type"] == "multiselect" else question["default"])
    return values


def test_no_survey_offers_a_value_its_role_rejects(plan):
    """The gate between surveys and argument specs: each answer passes the role entry point's own validation."""
    by_name = {t["name"]: t for t in DEFAULTS["controller_job_templates"]}
    checked = 0
    for template in plan["job_templates"] + plan["workflows"]:
        source = by_name.get(template["name"]) or by_name["DealerScope DR drill"]
        specs = yaml.safe_load((ROOT / "roles" / source["role"] / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        options = specs[source.get("entry_point", "main")]["options"]
        for question in template["survey_spec"]["spec"]:
            option = {k: v for k, v in options[question["variable"]].items() if k not in ("description", "default")}
            for answer in _answers(question):
                result = ArgumentSpecValidator({question["variable"]: option}).validate({question["variable"]: answer})
                assert not result.error_messages, "%s: %s=%r: %s" % (template["name"], question["variable"], answer, result.error_messages)
                checked += 1
    assert checked > 60, checked


def test_a_full_run_reaches_the_modules_and_stops_at_the_closed_port_without_showing_a_secret():
    extra = dict(SETTINGS, controller_host=CLOSED, controller_oauthtoken=TOKEN,
                 controller_credentials=[{"name": "DealerScope notifications", "credential_type": "DealerScope notifications",
                                          "inputs": {"slack_webhook_url": SECRET}}])
    proc, data = playbook(extra)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    failed = [r for r in results(data, "Apply - credential types") if r.get("failed") and "item" in r]
    assert failed and "Connection refused" in failed[0]["msg"] and "127.0.0.1:9/api/v2/credential_types" in failed[0]["msg"], output[-3000:]
    assert TOKEN not in output and SECRET not in output, "a secret is shown"


def test_the_controller_comes_from_awx_injected_environment_when_no_variable_names_it():
    """AWX's controller credential injects CONTROLLER_*: with no variable set, the modules log in where it says (a
    listener that accepts and hangs up stands where the controller would be, and counts who came)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(60)
    came = []

    def accept():
        try:
            while len(came) < 1:
                conn, _addr = listener.accept()
                came.append(True)
                conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        host = "https://127.0.0.1:%d" % listener.getsockname()[1]
        proc, data = playbook(SETTINGS, env={"CONTROLLER_HOST": host, "CONTROLLER_USERNAME": "admin", "CONTROLLER_PASSWORD": SECRET})
    finally:
        listener.close()
    failed = [r for r in results(data, "Apply - credential types") if r.get("failed") and "item" in r]
    assert failed and "Failed to get token" in failed[0]["msg"], proc.stdout[-3000:]
    assert came, "the modules never came to CONTROLLER_HOST"
    assert SECRET not in proc.stdout + proc.stderr


@pytest.mark.parametrize("extra,needle", [
    ({}, "controller: no controller to apply to - set controller_host"),
    ({"controller_host": CLOSED}, "controller: no controller to apply to"),
    ({"controller_host": "awx.example.com", "controller_oauthtoken": TOKEN}, "controller: no controller to apply to"),
    ({"controller_host": CLOSED, "controller_oauthtoken": TOKEN, "controller_project_scm_url": ""}, "controller_project_scm_url is empty"),
    ({"controller_host": CLOSED, "controller_oauthtoken": TOKEN,
      "controller_schedules": [{"name": "S", "runs": "daily", "frequency": "weekly", "days": ["funday"], "at": "06:00"}]},
     "controller_schedules[0] (S): days is"),
    ({"controller_host": CLOSED, "controller_oauthtoken": TOKEN, "controller_dr_approval_timeout_s": "soon"},
     "argument 'controller_dr_approval_timeout_s' is of type str and we were unable to convert to int"),
    ({"controller_host": CLOSED, "controller_oauthtoken": TOKEN, "controller_validate_certs": "maybe"},
     "argument 'controller_validate_certs' is of type str and we were unable to convert to bool"),
])
def test_bad_settings_stop_before_any_request(extra, needle):
    proc, data = playbook(dict(SETTINGS, **extra))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and needle in output, output[-3000:]
    assert not list(results(data, "Apply - ")), "a request was attempted"
    assert TOKEN not in output
