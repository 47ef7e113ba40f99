"""Bad input to dealerscope.ops.deploy is refused with a message naming the variable before any host is contacted:
the hosts are a closed port, so any contact would show up as UNREACHABLE instead."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from helpers.preflight import assert_refused_before_contact, closed_port_inventory, contacted, run  # noqa: E402  pylint: disable=wrong-import-position

LB = """        loadbalancers:
          hosts:
            ghostlb1: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}
        db_primary:
          hosts:
            ghostdb1: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: root}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    base = tmp_path_factory.mktemp("deploy-input")
    (base / "release").mkdir()
    (base / "release" / "dealerscope_api.py").write_text("print('release')\n")
    for name, files in {"gap": ["V1__a", "V3__c"], "dup": ["V1__a", "V2__b", "V02__c"], "ok": ["V1__a", "V2__b"]}.items():
        (base / name).mkdir()
        for stem in files:
            (base / name / (stem + ".up.sql")).write_text("select 1;\n")
    return base, closed_port_inventory(base / "hosts.yml", hosts=("ghostapp1",), extra_groups=LB)


def run_deploy(workspace, extra):
    base, inventory = workspace
    variables = {"deploy_version": "2.4.1", "deploy_artifact": str(base / "release"), "deploy_report_dir": str(base / "reports")}
    variables.update(extra)
    return run(inventory, "dealerscope.ops.deploy", variables)


@pytest.mark.parametrize("extra,needle", [
    ({"deploy_version": ""}, "deploy_version is \"\""),
    ({"deploy_version": "../etc"}, "deploy_version is \"../etc\""),
    ({"deploy_artifact": "/nonexistent/2.4.1.tar.gz"}, "deploy_artifact is \"/nonexistent/2.4.1.tar.gz\""),
    ({"deploy_keep": "1"}, "deploy_keep is \"1\""),
    ({"deploy_canary_steps": [50, 10, 100]}, "deploy_canary_steps[1] is 10, not more than the step before (50)"),
    ({"deploy_canary_steps": ["10", "50"]}, "deploy_canary_steps ends at 50; the last step must be 100"),
    ({"deploy_action": "yolo"}, "deploy_action"),
    ({"deploy_colour_ports": {"blue": 8001, "green": 8001}}, "two different TCP ports"),
    ({"deploy_lb_host": "nolb"}, "deploy_lb_host is \"nolb\""),
    ({"deploy_migrations_dir": "{base}/gap"}, "versions 1, 3"),
    ({"deploy_migrations_dir": "{base}/dup"}, "versions 1, 2, 2"),
])
def test_bad_input_is_refused_before_any_host_is_contacted(workspace, extra, needle):
    base = workspace[0]
    extra = {key: value.replace("{base}", str(base)) if isinstance(value, str) else value for key, value in extra.items()}
    result = run_deploy(workspace, extra)
    assert_refused_before_contact(result, needle)


def test_good_input_goes_on_to_the_hosts(workspace):
    result = run_deploy(workspace, {"deploy_migrations_dir": str(workspace[0] / "ok"), "deploy_canary_steps": ["25", "100"]})
    output = result.stdout + result.stderr
    assert contacted(output), output[-3000:]


def test_rollback_to_a_name_that_is_no_release_name_is_refused_before_any_host_is_contacted(workspace):
    result = run(workspace[1], "dealerscope.ops.rollback", {"rollback_to": "2.4.1; rm -rf /", "rollback_report_dir": str(workspace[0] / "r")})
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "rollback_to is" in output and not contacted(output), output[-3000:]
