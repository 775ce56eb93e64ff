"""The deployment's configuration without a cluster or a running hub (fast).

Kubernetes manifests are validated against the Kubernetes OpenAPI schemas that
kubernetes-validate ships (offline). The Zero to JupyterHub values are checked for the keys
Dry Lab relies on; the chart's own values schema is not on PyPI or npm, so it is not used.
"""

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
SINGLE_HOST = REPO / "deploy" / "single-host"
sys.path.insert(0, str(K8S / "grading"))
import render_jobs  # noqa: E402 (deploy/kubernetes/grading is not a package)

K8S_VERSION = "1.30"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _validate(manifest):
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", ["exchange-pvc.yaml", "grading/volumes.yaml",
                                  "grading/networkpolicy.yaml"])
def test_static_manifests_match_the_kubernetes_schema(name):
    docs = [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    assert docs
    for doc in docs:
        _validate(doc)


def test_grading_network_policy_denies_all_traffic_of_grading_pods():
    policy = yaml.safe_load((K8S / "grading" / "networkpolicy.yaml").read_text())
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["spec"]["egress"] == [] and policy["spec"]["ingress"] == []
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/component": "grading"}


@pytest.fixture
def collected_course(tmp_path):
    course = tmp_path / "course"
    for resident in ("resa", "Res.B_2"):
        sub = course / "submitted" / resident / "00_orientation"
        sub.mkdir(parents=True)
        (sub / "00_orientation.ipynb").write_text("{}")
        (sub / "timestamp.txt").write_text("2026-01-01 00:00:00 UTC")
        (sub / "submission_secret.txt").write_text(f"secret-of-{resident}")
    (course / "submitted" / "resc" / "01_cohort").mkdir(parents=True)
    return course


def test_one_valid_isolated_job_per_submission(collected_course):
    jobs = render_jobs.render(collected_course, "00_orientation", "registry/drylab:abc")
    assert [j["metadata"]["annotations"]["drylab/resident"] for j in jobs] == ["Res.B_2", "resa"]
    names = [j["metadata"]["name"] for j in jobs]
    assert len(set(names)) == 2
    policy = yaml.safe_load((K8S / "grading" / "networkpolicy.yaml").read_text())
    for job in jobs:
        _validate(job)
        assert DNS_1123.match(job["metadata"]["name"]) and len(job["metadata"]["name"]) <= 63
        pod = job["spec"]["template"]["spec"]
        labels = job["spec"]["template"]["metadata"]["labels"]
        # The deny-all policy selects every grading pod.
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["resources"]["limits"] == {
            "cpu": "1", "memory": "2Gi", "ephemeral-storage": "1Gi"}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert job["spec"]["activeDeadlineSeconds"] == 900
        assert job["spec"]["backoffLimit"] == 0
        resident = job["metadata"]["annotations"]["drylab/resident"]
        assert f"/course/submitted/{resident}/00_orientation " in container["args"][0]


def test_names_that_could_break_out_of_the_job_are_refused(collected_course):
    (collected_course / "submitted" / "x;rm -rf ~" / "00_orientation").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a plain name"):
        render_jobs.render(collected_course, "00_orientation", "registry/drylab:abc")


def test_merge_brings_job_results_back_for_release(collected_course, tmp_path):
    results = tmp_path / "results" / "00_orientation" / "resa"
    results.mkdir(parents=True)
    entry = {"resident": "resa", "module": "00_orientation", "submission_status": "ok",
             "rows": []}
    (results / "journal.jsonl").write_text(json.dumps(entry) + "\n")
    (results / "00_orientation.html").write_text("<p>feedback for resa</p>")
    merged = render_jobs.merge(collected_course, tmp_path / "results")
    assert merged == [("00_orientation", "resa")]
    lines = (collected_course / ".drylab" / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["resident"] for line in lines] == ["resa"]
    page_dir = collected_course / "feedback" / "resa" / "00_orientation"
    assert (page_dir / "00_orientation.html").read_text() == "<p>feedback for resa</p>"
    assert (page_dir / "submission_secret.txt").read_text() == "secret-of-resa"


def _values():
    return yaml.safe_load((K8S / "values.yaml").read_text())


def test_values_mount_the_exchange_volume_where_nbgrader_looks():
    values, pvc = _values(), yaml.safe_load((K8S / "exchange-pvc.yaml").read_text())
    storage = values["singleuser"]["storage"]
    (volume,) = storage["extraVolumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    (mount,) = storage["extraVolumeMounts"]
    assert mount["name"] == volume["name"]
    assert mount["mountPath"] == values["singleuser"]["extraEnv"]["DRYLAB_EXCHANGE_ROOT"]


def test_values_limit_each_resident_and_close_their_network():
    single = _values()["singleuser"]
    assert single["memory"]["limit"] == "2G" and single["cpu"]["limit"] == 1
    assert single["networkPolicy"]["enabled"] is True
    rules = single["networkPolicy"]["egressAllowRules"]
    assert not any(v for k, v in rules.items() if k != "dnsPortsKubeSystemNamespace")


def test_values_give_each_user_a_uid_a_role_group_and_their_resident_id():
    code = _values()["hub"]["extraConfig"]["drylab-identity"]
    c = SimpleNamespace(KubeSpawner=SimpleNamespace())
    exec(compile(code, "values.yaml:hub.extraConfig", "exec"), {"c": c})
    hook = c.KubeSpawner.pre_spawn_hook

    def spawn(name, user_id, groups):
        spawner = SimpleNamespace(environment={}, volumes=[], volume_mounts=[],
                                  user=SimpleNamespace(name=name, id=user_id, groups=[
                                      SimpleNamespace(name=g) for g in groups]))
        hook(spawner)
        return spawner

    a = spawn("resa", 7, ["drylab-residents"])
    b = spawn("resb", 8, ["drylab-residents"])
    teacher = spawn("drsmith", 9, ["drylab-instructors"])
    assert (a.uid, b.uid, teacher.uid) == (10007, 10008, 10009)
    assert (a.gid, b.gid, teacher.gid) == (100, 100, 2000)
    assert a.environment["DRYLAB_RESIDENT_ID"] == "resa"
    assert a.environment["JUPYTER_CONFIG_PATH"].split(":")[0].endswith("/resident")
    assert teacher.environment["JUPYTER_CONFIG_PATH"].split(":")[0].endswith("/instructor")
    # Only the instructor's server mounts the course the grading Jobs read.
    assert a.volumes == [] and a.volume_mounts == []
    assert {v["persistentVolumeClaim"]["claimName"] for v in teacher.volumes} == {
        "drylab-course", "drylab-grading-results"}
    course = yaml.safe_load((K8S / "grading" / "job-template.yaml").read_text().replace("$", ""))
    job_claims = {v["persistentVolumeClaim"]["claimName"]
                  for v in course["spec"]["template"]["spec"]["volumes"]
                  if "persistentVolumeClaim" in v}
    assert job_claims == {"drylab-course", "drylab-grading-results"}


def _load_hub_config(monkeypatch, tmp_path, **env):
    for key in [k for k in __import__("os").environ if k.startswith("DRYLAB_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = Config()
    path = SINGLE_HOST / "jupyterhub_config.py"
    exec(compile(path.read_text(), str(path), "exec"),
         {"get_config": lambda: config, "__file__": str(path)})
    return config


def test_hub_config_refuses_to_start_without_an_authenticator(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="DRYLAB_HUB_AUTH"):
        _load_hub_config(monkeypatch, tmp_path, DRYLAB_INSTRUCTORS="teacher",
                         DRYLAB_HUB_STATE_DIR=str(tmp_path / "state"))


def test_hub_config_passes_the_user_name_as_resident_id(monkeypatch, tmp_path):
    config = _load_hub_config(
        monkeypatch, tmp_path, DRYLAB_HUB_AUTH="shared-password",
        DRYLAB_SHARED_PASSWORD="a-long-password", DRYLAB_INSTRUCTORS="teacher",
        DRYLAB_RESIDENTS="resa,resb", DRYLAB_HUB_SPAWNER="simple",
        DRYLAB_HUB_STATE_DIR=str(tmp_path / "state"),
        DRYLAB_EXCHANGE_ROOT=str(tmp_path / "exchange"))
    assert config.Authenticator.allowed_users == {"teacher", "resa", "resb"}
    env = config.Spawner.environment
    spawner = SimpleNamespace(user=SimpleNamespace(name="resa"))
    assert env["DRYLAB_RESIDENT_ID"](spawner) == "resa"
    assert env["JUPYTER_CONFIG_PATH"](spawner).split(":")[0].endswith("jupyter-config/resident")
    teacher = SimpleNamespace(user=SimpleNamespace(name="teacher"))
    assert env["JUPYTER_CONFIG_PATH"](teacher).split(":")[0].endswith("jupyter-config/instructor")
    assert env["DRYLAB_EXCHANGE_ROOT"] == str(tmp_path / "exchange")
    assert (tmp_path / "exchange").stat().st_mode & 0o1777 == 0o1777
    proxy = Path(config.ConfigurableHTTPProxy.command[0])
    assert proxy.name == "configurable-http-proxy" and proxy.parent.parent.name == "node_modules"
