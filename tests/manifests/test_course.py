"""The course overlay keeps the course deployment's names, mount and environment."""

from __future__ import annotations

from tests.manifests.rendered import container, course_deployment, find, pod_spec, render_overlay


def test_course_runtime_env_is_the_course_env() -> None:
    ours = container(find(render_overlay("course"), "Deployment", "serverless-runtime"), "runtime")
    theirs = course_deployment()[0]["spec"]["template"]["spec"]["containers"][0]
    # The same variables from the same sources; only the generated ConfigMap name has a hash.
    expected = theirs["env"]
    actual = ours["env"]
    for var in actual:
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if ref is not None:
            assert ref["name"].startswith("outputkey-")
            ref["name"] = "outputkey"
    assert actual == expected
    assert "envFrom" not in ours


def test_course_function_is_mounted_by_sub_path_from_pyfile() -> None:
    docs = render_overlay("course")
    runtime = find(docs, "Deployment", "serverless-runtime")
    mount, tmp = container(runtime, "runtime")["volumeMounts"]
    assert tmp["mountPath"] == "/tmp"  # the emptyDir NEW_REQUERIMENTS are installed in
    assert mount["mountPath"] == "/opt/usermodule.py"
    assert mount["subPath"] == "pyfile"
    volume = next(v for v in pod_spec(runtime)["volumes"] if v["name"] == mount["name"])
    configmap = find(docs, "ConfigMap", "pyfile")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert "items" not in volume["configMap"]
    assert set(configmap["data"]) == {"pyfile"}


def test_course_output_key_comes_from_outputkey() -> None:
    configmap = find(render_overlay("course"), "ConfigMap", "outputkey")
    assert configmap["data"] == {"REDIS_OUTPUT_KEY": "resource-monitor-course"}
