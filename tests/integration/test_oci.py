"""The Wasm OCI image of tracejoin.wasm (`make oci`, tracejoin_tools/istio/oci.py): a valid OCI
image layout holding the Wasm image spec's compat variant, built the same for the same
module, the pinned manifests' sha256 equal to what Istio checks, and a push with skopeo to a
real OCI distribution registry on loopback pulled back as Istio's fetcher reads it.

The checks here read the layout with their own code (the standard library's gzip and tar
readers), not with oci.read_layout."""

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from tracejoin_tools.common import LOOPBACK, ROOT, free_port
from tracejoin_tools.envoy import harness as envoy_harness

TAG = "0.1.0"
IMAGE = f"registry.example.com/tracejoin:{TAG}"
# What an OCI descriptor's fields must look like (image-spec descriptor.md).
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
# The Accept header of Istio's manifest request: go-containerregistry v0.21.7 (Istio 1.30.3's
# go.mod) remote.Get sends allManifestMediaTypes (pkg/v1/remote/descriptor.go).
ISTIO_ACCEPT = ",".join([
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
])


def make_layout(wasm, out, *extra):
    run = subprocess.run([sys.executable, "-m", "tracejoin_tools.istio.oci", "--wasm", str(wasm), "--out", str(out), *extra], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


def printed_sha256(stdout):
    return re.search(r"^sha256 for WasmPlugin/TrafficExtension: ([0-9a-f]{64})$", stdout, re.M).group(1)


def blob(root, descriptor):
    """A descriptor's blob, checked against its digest and size, as any layout reader must."""
    assert DIGEST.fullmatch(descriptor["digest"]) and MEDIA_TYPE.fullmatch(descriptor["mediaType"])
    assert isinstance(descriptor["size"], int)
    data = (root / "blobs" / "sha256" / descriptor["digest"].removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
    assert len(data) == descriptor["size"]
    return data


def module_in(layer):
    """plugin.wasm out of a compat layer, as Istio reads it (gunzip, tar, by base name)."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        members = tar.getmembers()
        assert [(m.name, m.isfile(), m.mode, m.mtime, m.uid, m.gid) for m in members] == [("plugin.wasm", True, 0o644, 0, 0, 0)]
        return tar.extractfile(members[0]).read()


@pytest.fixture(scope="module")
def layout(wasm, tmp_path_factory):
    out = tmp_path_factory.mktemp("oci") / "layout"
    stdout = make_layout(wasm, out)
    return out, stdout


def test_layout_is_a_valid_oci_image_layout(layout):
    """image-spec image-layout.md: oci-layout, index.json, blobs/<alg>/<encoded>; every blob
    named by its digest and referenced; the index names the manifest by tag."""
    root, _ = layout
    assert sorted(p.name for p in root.iterdir()) == ["blobs", "index.json", "oci-layout"]
    assert json.loads((root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_bytes())
    assert index["schemaVersion"] == 2 and index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    [entry] = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": TAG}
    manifest = json.loads(blob(root, entry))
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == entry["mediaType"]
    config, [layer] = manifest["config"], manifest["layers"]
    referenced = {entry["digest"], config["digest"], layer["digest"]}
    stored = {f"sha256:{p.name}" for p in (root / "blobs" / "sha256").iterdir()}
    assert stored == referenced and [p.name for p in (root / "blobs").iterdir()] == ["sha256"]
    for descriptor in (entry, config, layer):
        blob(root, descriptor)


def test_layout_holds_a_wasm_compat_image(layout, wasm):
    """The compat variant (solo-io/wasm spec/spec-compat.md), the form Istio's fetcher tries
    first for an OCI manifest: exactly one tar+gzip layer holding plugin.wasm (here the built
    module byte for byte), the variant annotation, and an image config that parses."""
    root, stdout = layout
    [entry] = json.loads((root / "index.json").read_bytes())["manifests"]
    manifest_blob = blob(root, entry)
    manifest = json.loads(manifest_blob)
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    version = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    assert manifest["annotations"] == {
        "module.wasm.image/variant": "compat",
        "org.opencontainers.image.title": "tracejoin",
        "org.opencontainers.image.description": manifest["annotations"]["org.opencontainers.image.description"],
        "org.opencontainers.image.version": version,
    }
    layer_blob = blob(root, layer)
    module = module_in(layer_blob)
    assert module == Path(wasm).read_bytes() and module.startswith(b"\0asm\1\0\0\0")
    config = json.loads(blob(root, manifest["config"]))
    assert (config["architecture"], config["os"]) == ("wasm", "wasip1")
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(layer_blob)).hexdigest()]}
    assert "created" not in config
    # What the script printed is the manifest's digest.
    assert printed_sha256(stdout) == hashlib.sha256(manifest_blob).hexdigest() == entry["digest"].removeprefix("sha256:")


def test_build_is_deterministic(layout, wasm, tmp_path):
    """Same module, same bytes (another path, another file time, another run); another module,
    another digest."""
    root, stdout = layout
    copy = tmp_path / "copy.wasm"
    shutil.copy(wasm, copy)
    os.utime(copy, (1, 1))
    again = tmp_path / "again"
    assert printed_sha256(make_layout(copy, again)) == printed_sha256(stdout)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (root / name).read_bytes() == (again / name).read_bytes(), name
    changed = tmp_path / "changed.wasm"
    changed.write_bytes(Path(wasm).read_bytes() + b"\0")
    assert printed_sha256(make_layout(changed, tmp_path / "changed")) != printed_sha256(stdout)


def test_refuses_what_is_not_a_module(tmp_path):
    not_wasm = tmp_path / "x.wasm"
    not_wasm.write_bytes(b"#!/bin/sh\n")
    run = subprocess.run([sys.executable, "-m", "tracejoin_tools.istio.oci", "--wasm", str(not_wasm), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 1 and "not a wasm module" in run.stderr
    assert not (tmp_path / "out").exists()


def pin_from(layout_dir, out, image=IMAGE, wasm=None):
    args = [sys.executable, "-m", "tracejoin_tools.istio.pin", "--out", str(out), "--image", image, "--oci-layout", str(layout_dir)]
    if wasm:
        args += ["--wasm", str(wasm)]
    return subprocess.run(args, capture_output=True, text=True)


def pinned_plugins(folder):
    """(kind, name) -> the spec holding url and sha256, for every plugin in a folder's manifests."""
    found = {}
    for path in sorted(Path(folder).rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("WasmPlugin", "TrafficExtension"):
                found[(doc["kind"], doc["metadata"]["name"])] = doc["spec"].get("wasm", doc["spec"])
    return found


def test_pinned_manifests_point_at_the_layout(layout, wasm, tmp_path):
    """`make istio-release IMAGE=...` (pin --oci-layout): every WasmPlugin and TrafficExtension
    gets the image url and, as sha256, the digest of the layout's manifest, which is what
    Istio compares (pkg/wasm/cache.go: the fetcher's img.Digest(), the manifest's sha256)."""
    root, _ = layout
    [entry] = json.loads((root / "index.json").read_bytes())["manifests"]
    manifest_sha256 = hashlib.sha256(blob(root, entry)).hexdigest()
    run = pin_from(root, tmp_path / "istio", wasm=wasm)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    plugins = pinned_plugins(tmp_path / "istio")
    # Every plugin of the kit (HTTP and NETWORK, WasmPlugin and TrafficExtension).
    assert plugins.keys() == pinned_plugins(ROOT / "istio").keys() and len(plugins) >= 2
    for key, spec in plugins.items():
        assert (spec["url"], spec["sha256"]) == (f"oci://{IMAGE}", manifest_sha256), key
    # The module's own sha256 is not what Istio checks for an oci:// url.
    assert manifest_sha256 != hashlib.sha256(Path(wasm).read_bytes()).hexdigest()


def test_pin_refuses_a_damaged_layout(layout, tmp_path):
    root, _ = layout
    damaged = tmp_path / "damaged"
    shutil.copytree(root, damaged)
    manifest = json.loads((damaged / "index.json").read_bytes())["manifests"][0]["digest"]
    layer = json.loads((damaged / "blobs" / "sha256" / manifest.removeprefix("sha256:")).read_bytes())["layers"][0]["digest"]
    path = damaged / "blobs" / "sha256" / layer.removeprefix("sha256:")
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    path.write_bytes(bytes(data))
    run = pin_from(damaged, tmp_path / "istio")
    assert run.returncode == 1 and f"blob {layer} does not match its digest" in run.stderr
    assert not (tmp_path / "istio").exists()
    # An image reference pinned to another digest is refused too.
    run = pin_from(root, tmp_path / "istio", image=f"{IMAGE}@sha256:{'0' * 64}")
    assert run.returncode == 1 and "names digest" in run.stderr


# --- push and pull through a real registry ---------------------------------------------


def tool(name):
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not found: make setup installs it")
        pytest.skip(f"{name} not found: make setup installs it (Debian package {name})")
    return path


class Registry:
    """Debian's docker-registry (the CNCF distribution registry) on a free loopback port,
    storing into a temporary folder; stopped on exit."""

    def __init__(self, workdir):
        self.port = free_port()
        self.host = f"{LOOPBACK}:{self.port}"
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}},
            "http": {"addr": self.host},
        }
        self.config_path = workdir / "registry.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "registry.log"

    def __enter__(self):
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([tool("docker-registry"), "serve", str(self.config_path)], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def wait_ready(self, timeout=30):
        envoy_harness.wait_until_answering(f"http://{self.host}/v2/", self.process, "registry", timeout, self.log_path.read_text)

    def __exit__(self, *_):
        envoy_harness.stop_process(self.process)
        self.log.close()

    def get(self, path, accept=None):
        request = urllib.request.Request(f"http://{self.host}{path}", headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers, answer.read()


def skopeo_push(workdir, layout_dir, reference):
    """skopeo copy from the layout, as the docs show it; a policy file of its own so the
    machine's /etc/containers/policy.json plays no part."""
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    run = subprocess.run(
        [tool("skopeo"), "--policy", str(policy), "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout_dir}:{TAG}", f"docker://{reference}"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr


def fetch_as_istio(registry, repository, tag):
    """What Istio 1.30.3's image fetcher does with `oci://<registry>/<repository>:<tag>`
    (pkg/wasm/imagefetcher.go PrepareFetch, on go-containerregistry's remote.Get): the
    manifest by tag with its Accept header; the digest it compares with `sha256` is the
    sha256 of the manifest bytes; an OCI manifest is read as the compat variant from its last
    layer (tar+gzip, plugin.wasm by base name), the blob checked against its digest.
    Returns (manifest digest hex, module)."""
    headers, manifest_blob = registry.get(f"/v2/{repository}/manifests/{tag}", accept=ISTIO_ACCEPT)
    digest = hashlib.sha256(manifest_blob).hexdigest()
    assert headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    assert headers["Docker-Content-Digest"] == f"sha256:{digest}"
    manifest = json.loads(manifest_blob)
    layer = manifest["layers"][-1]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    _, layer_blob = registry.get(f"/v2/{repository}/blobs/{layer['digest']}")
    assert f"sha256:{hashlib.sha256(layer_blob).hexdigest()}" == layer["digest"] and len(layer_blob) == layer["size"]
    return digest, module_in(layer_blob)


def test_pushed_with_skopeo_and_pulled_as_istio_does(layout, wasm, tmp_path):
    """skopeo copies the layout into a real registry unchanged: the manifest Istio pulls by
    tag has the digest the pinned manifests carry, and plugin.wasm in its layer is the built
    module. Pushing another module under the same tag changes the digest Istio sees, so the
    pinned sha256 refuses it (cache.go: "module downloaded from ... has checksum ...")."""
    root, _ = layout
    pinned = tmp_path / "istio"
    with Registry(tmp_path) as registry:
        reference = f"{registry.host}/tracejoin:{TAG}"
        assert pin_from(root, pinned, image=reference, wasm=wasm).returncode == 0
        [sha256] = {spec["sha256"] for spec in pinned_plugins(pinned).values()}
        [url] = {spec["url"] for spec in pinned_plugins(pinned).values()}
        assert url == f"oci://{reference}"
        skopeo_push(tmp_path, root, reference)
        digest, module = fetch_as_istio(registry, "tracejoin", TAG)
        assert digest == sha256
        assert module == Path(wasm).read_bytes()
        # By digest too (what `oci://...@sha256:` would pull): the same bytes.
        assert registry.get(f"/v2/tracejoin/manifests/sha256:{sha256}", accept=ISTIO_ACCEPT)[1] == registry.get(f"/v2/tracejoin/manifests/{TAG}", accept=ISTIO_ACCEPT)[1]

        other = tmp_path / "other.wasm"
        other.write_bytes(Path(wasm).read_bytes() + b"\0")
        make_layout(other, tmp_path / "other")
        skopeo_push(tmp_path, tmp_path / "other", reference)
        moved, module = fetch_as_istio(registry, "tracejoin", TAG)
        assert module == other.read_bytes()
        assert moved != sha256
