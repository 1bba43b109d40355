"""Board bundles without the network: dependency resolution, .deb unpacking, the checks
profile_board makes of a bundle and of what comes back, and the TensorRT route."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import textwrap

import numpy as np
import pytest
import torch
from helpers import TINY, host_bundle, tiny_onnx_models

from dyndnn.boards.board import BoardError, check_board
from dyndnn.boards.debian import DebianIndex, parse_depends, resolve, unpack_deb
from dyndnn.boards.packages import BundleSpec
from dyndnn.boards.profiling import check_bundle, check_parity, check_results, parity_inputs, profile_board
from dyndnn.learn.export import ExportError, _describe, check_manifest, to_onnx_bytes
from dyndnn.learn.model import GroupedAlexNet, ModelConfig

SETTINGS = {"warmup": 1, "min_runs": 5, "min_seconds": 0.0, "seed": 0}

PACKAGES = textwrap.dedent(
    """\
    Package: python3-onnxruntime
    Version: 1.21.0
    Depends: libonnxruntime1.21 (= 1.21.0), python3 (>= 3.13~), python3-numpy2-abi0 | python3-numpy-abi9, libc6 (>= 2.38)
    Filename: pool/o/python3-onnxruntime.deb

    Package: libonnxruntime1.21
    Version: 1.21.0
    Depends: libc6, libstdc++6
    Filename: pool/o/libonnxruntime.deb

    Package: python3
    Version: 3.13.5
    Pre-Depends: python3-minimal (= 3.13.5)
    Depends: python3.13, libpython3-stdlib
    Filename: pool/p/python3.deb

    Package: python3-minimal
    Version: 3.13.5
    Depends: dpkg (>= 1.13.20)
    Filename: pool/p/python3-minimal.deb

    Package: python3.13
    Version: 3.13.5
    Depends: libc6
    Filename: pool/p/python3.13.deb

    Package: python3-numpy
    Version: 2.2.4
    Provides: python3-numpy2-abi0, python3-f2py
    Depends: libblas3 | libblas.so.3, libc6
    Filename: pool/n/python3-numpy.deb

    Package: libopenblas0
    Version: 0.3
    Provides: libblas.so.3
    Filename: pool/b/libopenblas0.deb

    Package: libc6
    Version: 2.41
    Filename: pool/c/libc6.deb

    Package: libstdc++6
    Version: 14
    Depends: libc6
    Filename: pool/s/libstdc++6.deb

    Package: dpkg
    Version: 1.22
    Depends: tar
    Filename: pool/d/dpkg.deb
    """
)


def test_parse_depends_keeps_alternatives_and_drops_versions():
    assert parse_depends("a (>= 1) | b:any, c [armhf], python3:any") == [["a", "b"], ["c"], ["python3"]]
    assert parse_depends("") == []


def test_resolve_follows_virtual_packages_and_leaves_out_installation_machinery():
    index = DebianIndex.from_text(PACKAGES)
    names = [p["Package"] for p in resolve(index, ["python3-onnxruntime"])]
    # python3-numpy2-abi0 is virtual (provided by python3-numpy); libblas.so.3 has a provider but
    # libblas3 does not exist in this index, so its provider libopenblas0 is taken; dpkg is excluded
    assert set(names) == {
        "python3-onnxruntime",
        "libonnxruntime1.21",
        "python3",
        "python3-minimal",
        "python3.13",
        "python3-numpy",
        "libopenblas0",
        "libc6",
        "libstdc++6",
    }
    assert names[0] == "python3-onnxruntime" and len(names) == len(set(names))
    assert "dpkg" in [p["Package"] for p in resolve(index, ["python3"], exclude=())]
    with pytest.raises(Exception, match="'python2' is not in Debian test for armhf"):
        resolve(index, ["python2"])


def make_deb(path, members):
    """A real .deb (ar archive: debian-binary, control.tar.xz, data.tar.xz)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:xz"):
        pass
    out = b"!<arch>\n"
    for name, blob in (("debian-binary", b"2.0\n"), ("control.tar.xz", control.getvalue()), ("data.tar.xz", data.getvalue())):
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(blob):<10}`\n".encode() + blob + (b"\n" if len(blob) % 2 else b"")
    path.write_bytes(out)
    return path


def test_unpack_deb_keeps_the_sysroot_self_contained(tmp_path):
    deb = make_deb(tmp_path / "libfoo.deb", [
        ("./usr", "dir", None), ("./usr/lib", "dir", None), ("./usr/lib/arm-linux-gnueabihf", "dir", None),
        ("./usr/lib/arm-linux-gnueabihf/libfoo.so.1.2", "file", b"\x7fELF..."),
        ("./usr/lib/arm-linux-gnueabihf/libfoo.so.1", "sym", "/usr/lib/arm-linux-gnueabihf/libfoo.so.1.2"),
    ])  # fmt: skip
    root = tmp_path / "root"
    files = unpack_deb(deb, root)
    link = root / "usr/lib/arm-linux-gnueabihf/libfoo.so.1"
    assert "./usr/lib/arm-linux-gnueabihf/libfoo.so.1.2" in files
    assert link.is_symlink() and not os.readlink(link).startswith("/")  # never into the host's /usr
    assert link.resolve() == (root / "usr/lib/arm-linux-gnueabihf/libfoo.so.1.2").resolve() and link.read_bytes() == b"\x7fELF..."
    unpack_deb(deb, root)  # a second package shipping the same files replaces them
    (tmp_path / "bad.deb").write_bytes(b"not an archive")
    with pytest.raises(Exception, match="not a .deb"):
        unpack_deb(tmp_path / "bad.deb", root)


def test_cache_key_is_the_package_list_not_the_board():
    a = BundleSpec(arch="armhf", python="3.13", source="debian", suite="trixie", packages=("python3-numpy", "python3-onnxruntime"))
    b = BundleSpec(
        arch="armhf", python="3.13", source="debian", suite="trixie", packages=("python3-onnxruntime", "python3-numpy"), interpreter="py"
    )
    c = BundleSpec(arch="arm64", python="3.13", source="debian", suite="trixie", packages=("python3-onnxruntime", "python3-numpy"))
    assert a.key() == b.key() != c.key()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_onnx_models(tmp_path_factory.mktemp("onnx"), groups=(1, 2))


def board(**overrides):
    b = {
        "name": "testboard",
        "transport": {"type": "local"},
        "runtime": "onnxruntime",
        "mappings": {"one-core": {"cpus": [0], "threads": 1}},
    }
    return {**b, **overrides}


def test_stale_bundle_is_refused_before_connecting(tmp_path, models, monkeypatch):
    b, tar, _ = host_bundle(tmp_path, models, board())
    torch.manual_seed(1)
    other = tmp_path / "g1.onnx"
    other.write_bytes(to_onnx_bytes(GroupedAlexNet(ModelConfig(**TINY)).materialize(1), 13, 7))
    with pytest.raises(BoardError, match=r"does not carry the current dynamic/g1 .*rebuild it"):
        check_bundle(b, tar, [{**models[0], "path": str(other)}])
    with pytest.raises(BoardError, match="was built for board 'testboard'"):
        check_bundle({**b, "name": "other"}, tar, models)


def test_board_outputs_that_differ_from_the_host_fail(tmp_path, models):
    xs = parity_inputs(3, 0)
    from dyndnn.boards.profiling import host_outputs

    good = {f"m{i}": host_outputs(m["path"], xs) for i, m in enumerate(models)}
    np.savez(tmp_path / "ok.npz", **good)
    diffs = check_parity(board(), "h", models, xs, tmp_path / "ok.npz", 1e-4)
    assert max(diffs.values()) == 0.0
    np.savez(tmp_path / "bad.npz", m0=good["m0"], m1=good["m1"] + 1e-3)
    with pytest.raises(BoardError, match=r"parity failed: board outputs differ .*dynamic/g2"):
        check_parity(board(), "h", models, xs, tmp_path / "bad.npz", 1e-4)


def test_incomplete_runner_results_are_rejected(tmp_path, models):
    out = tmp_path / "profile" / "testboard"
    out.parent.mkdir()
    profile_board(board(), models, SETTINGS, out)
    from dyndnn.boards.profiling import _plan

    plan = _plan(board(), models, SETTINGS)
    staging = tmp_path / "staging"
    staging.mkdir()
    import pandas as pd

    summary, samples = pd.read_csv(out / "summary.csv"), pd.read_csv(out / "samples.csv")
    drop = ["board", "model", "groups"]
    summary.insert(0, "label", summary["model"] + "/g" + summary["groups"].astype(str))
    samples.insert(0, "label", samples["model"] + "/g" + samples["groups"].astype(str))
    summary.drop(columns=drop).to_csv(staging / "summary.csv", index=False)
    samples.drop(columns=drop).to_csv(staging / "samples.csv", index=False)
    (staging / "board.json").write_text((out / "board.json").read_text())
    check_results(staging, plan, board(), "h")  # the real runner's output passes
    samples.drop(columns=drop).iloc[:-1].to_csv(staging / "samples.csv", index=False)
    with pytest.raises(BoardError, match="samples.csv does not hold n samples"):
        check_results(staging, plan, board(), "h")
    summary.drop(columns=drop).iloc[:1].to_csv(staging / "summary.csv", index=False)
    with pytest.raises(BoardError, match="result check failed: no result for dynamic/g2 on mapping one-core"):
        check_results(staging, plan, board(), "h")


FAKE_TRTEXEC = """#!{python}
# Stands in for JetPack's trtexec: same flags, same --exportTimes JSON (one record per inference).
import json, os, sys
args = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in sys.argv[1:])
print("&&&& RUNNING TensorRT.trtexec [TensorRT v8201] # trtexec " + " ".join(sys.argv[1:]))
if "onnx" in args:
    with open(os.environ["FAKE_TRT_LOG"], "a") as f:
        f.write(args["onnx"] + "\\n")
    open(args["saveEngine"], "wb").write(b"engine for " + open(args["onnx"], "rb").read()[:16])
elif "loadEngine" in args:
    n = int(args["iterations"])
    json.dump([{{"startInMs": i, "latencyMs": 0.5 + i / 1000.0, "computeMs": 0.4}} for i in range(n)], open(args["exportTimes"], "w"))
"""


def test_tensorrt_mapping_builds_engines_once_and_reports_absence(tmp_path, models, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    trtexec = bindir / "trtexec"
    trtexec.write_text(FAKE_TRTEXEC.format(python=sys.executable))
    trtexec.chmod(0o755)
    monkeypatch.setenv("FAKE_TRT_LOG", str(tmp_path / "builds.log"))
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    b = board(
        mappings={"CPU": {"cpus": [0], "threads": 1}, "GPU": {"cpus": [0], "threads": 1, "device": "gpu", "runtime": "tensorrt"}},
        tensorrt_cache=str(tmp_path / "engines"),
    )
    check_board(b)
    for run in (1, 2):
        out = tmp_path / f"p{run}" / "testboard"
        out.parent.mkdir()
        summary = profile_board(b, models, SETTINGS, out)
        gpu = summary[summary["mapping"] == "GPU"]
        # every round's visit runs its share of min_runs (at least one), over the default 12 rounds
        assert (
            len(gpu) == 2 and (gpu["n"] == gpu["rounds"] * -(-SETTINGS["min_runs"] // gpu["rounds"])).all() and (gpu["min_ms"] == 0.5).all()
        )
        assert "TensorRT 8201" in json.loads((out / "board.json").read_text())["tensorrt"]
    assert len((tmp_path / "builds.log").read_text().splitlines()) == 2  # one engine per model, reused by run 2
    assert sorted(p.name.split("-")[1] for p in (tmp_path / "engines").iterdir()) == ["trt8201.engine"] * 2

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    out = tmp_path / "p3" / "testboard"
    out.parent.mkdir()
    summary = profile_board(b, models, SETTINGS, out)
    facts = json.loads((out / "board.json").read_text())
    assert set(summary["mapping"]) == {"CPU"} and facts["tensorrt"].startswith("unavailable: TensorRT unavailable: no trtexec")
    assert "mapping GPU not measured" in facts["skipped_note"]
    (tmp_path / "p4").mkdir()
    with pytest.raises(BoardError, match="TensorRT unavailable"):
        profile_board(
            {**b, "mappings": {"GPU": {**b["mappings"]["GPU"], "required": True}}}, models, SETTINGS, tmp_path / "p4" / "testboard"
        )


def test_board_config_rules_for_bundles_and_runtimes():
    bundle = {"arch": "armhf", "python": "3.13", "source": "debian", "packages": ["python3-onnxruntime"]}
    with pytest.raises(ValueError, match="bundle source debian needs a suite"):
        check_board(board(bundle=bundle))
    with pytest.raises(ValueError, match="bundles carry ONNX Runtime"):
        check_board(board(runtime="torch", bundle={**bundle, "suite": "trixie"}))
    check_board(board(runtime="torch", bundle={**bundle, "use": False}))  # the escape hatch
    with pytest.raises(ValueError, match="mapping x runs 'tensorrt'"):
        check_board(board(runtime="torch", mappings={"x": {"cpus": [0], "runtime": "tensorrt"}}))


def test_export_manifest_check_rejects_what_old_runtimes_cannot_load():
    net = GroupedAlexNet(ModelConfig(**TINY)).materialize(1)
    manifest = _describe(to_onnx_bytes(net, 13, 7))
    check_manifest(manifest, 13, 7)
    with pytest.raises(ExportError, match="IR 7 / opset 13, expected IR 8 / opset 13"):
        check_manifest(manifest, 13, 8)
    with pytest.raises(ExportError, match="expected static input"):
        check_manifest({**manifest, "inputs": {"input": ["batch", 3, 32, 32]}}, 13, 7)
    with pytest.raises(ExportError, match="float32 only"):
        check_manifest({**manifest, "dtypes": {"input": "float16", "logits": "float32"}}, 13, 7)
