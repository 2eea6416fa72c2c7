"""Deterministic container images on disk for integration tests and benchmarks.

Role: build OCI and Docker images in memory from a seed and write them in the two on-disk
formats that skopeo reads and writes without touching a container store:
  - an OCI image layout (``oci:DIR:TAG``): ``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``;
  - skopeo's directory transport (``dir:DIR``): ``version``, ``manifest.json`` (the top
    manifest), ``<hex>.manifest.json`` for each instance of an index copied with ``--all``,
    and one file ``<hex>`` per blob.

It also holds ``Skopeo``, which runs skopeo against these layouts and a registry with all
of skopeo's state (config, caches, temp files) inside one directory of the caller's.

Kinds of images:
  - ``make_image``: a multi-layer image with an OCI image manifest or, with ``docker=True``,
    a Docker schema2 manifest (Docker media types for manifest, config and layers);
  - ``make_index``: an OCI image index (or, with ``docker=True``, a Docker manifest list)
    over one image per platform: a multi-arch image.

Design and invariants:
  - Everything is a pure function of its arguments: the same seed gives the same bytes, the
    same digests (tar and gzip headers carry no time, owner or host name; only a different
    zlib could compress differently).
  - Layers are gzip-compressed tars (``...tar+gzip``), since skopeo compresses any
    uncompressed layer on the way to a registry and would change the manifest. Their file
    contents are pseudo-random so layer sizes on the wire are what the caller asked for;
    ``gzip_level=0`` (stored blocks) keeps large layers cheap to build.
  - Manifests are serialized once; their bytes are the reference for "byte-identical"
    checks, and ``digest`` is always ``sha256`` of exactly those bytes.
  - Readers (``read_oci_layout``, ``read_dir_layout``) return what is on disk without
    interpreting it, so a test compares bytes, not parsed JSON.
"""

import gzip
import hashlib
import io
import json
import os
import random
import stat
import subprocess
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
DIR_TRANSPORT_VERSION = b"Directory Transport Version: 1.1\n"

# Limits: these helpers hold every blob in memory.
MAX_LAYERS = 64
MAX_LAYER_SIZE = 256 << 20


def digest_of(data):
    """Return the ``sha256:<hex>`` digest of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest):
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        raise ValueError("unsupported digest %r" % digest)
    return hexpart


def _json(obj):
    # Compact, key-sorted, with a final newline: stable bytes for the same object.
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


class Blob:
    """A content-addressed blob: ``data`` (owned bytes), ``digest``, ``size``, ``media_type``."""

    def __init__(self, data, media_type):
        self.data = data
        self.media_type = media_type
        self.digest = digest_of(data)
        self.size = len(data)

    def descriptor(self):
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class Image:
    """One image: manifest bytes and digest, its config blob, its layer blobs, its platform."""

    def __init__(self, manifest, media_type, config, layers, platform):
        self.manifest = manifest
        self.media_type = media_type
        self.digest = digest_of(manifest)
        self.config = config
        self.layers = layers
        self.platform = platform

    def blobs(self):
        """Every blob the manifest references, config first."""
        return [self.config] + list(self.layers)

    def manifests(self):
        """(digest, media type, bytes) of every manifest, top first."""
        return [(self.digest, self.media_type, self.manifest)]


class Index:
    """A multi-platform image: index bytes and digest plus the per-platform images."""

    def __init__(self, manifest, media_type, images):
        self.manifest = manifest
        self.media_type = media_type
        self.digest = digest_of(manifest)
        self.images = images

    def blobs(self):
        seen, out = set(), []
        for img in self.images:
            for b in img.blobs():
                if b.digest not in seen:
                    seen.add(b.digest)
                    out.append(b)
        return out

    def manifests(self):
        out = [(self.digest, self.media_type, self.manifest)]
        for img in self.images:
            out.extend(img.manifests())
        return out


def _layer_tar(rng, index, nfiles, total):
    """An uncompressed tar of ``nfiles`` pseudo-random files summing to about ``total`` bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("layer%d" % index)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(d)
        remaining = total
        for i in range(nfiles):
            size = remaining if i == nfiles - 1 else remaining // (nfiles - i)
            remaining -= size
            ti = tarfile.TarInfo("layer%d/file%d.bin" % (index, i))
            ti.size, ti.mode, ti.mtime = size, 0o644, 0
            tar.addfile(ti, io.BytesIO(rng.randbytes(size)))
    return buf.getvalue()


def make_image(
    seed,
    layers=3,
    layer_size=64 << 10,
    files_per_layer=3,
    docker=False,
    os_name="linux",
    arch="amd64",
    variant=None,
    gzip_level=6,
):
    """Build an image of ``layers`` gzip layers, each about ``layer_size`` bytes.

    Returns an ``Image`` whose manifest is OCI (``docker=False``) or Docker schema2.
    """
    if not 1 <= layers <= MAX_LAYERS:
        raise ValueError("layers must be in 1..%d" % MAX_LAYERS)
    if not 0 <= layer_size <= MAX_LAYER_SIZE:
        raise ValueError("layer_size must be in 0..%d" % MAX_LAYER_SIZE)
    rng = random.Random("%s/%s/%s/%s/%s" % (seed, os_name, arch, variant, docker))
    layer_type = DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP
    blobs, diff_ids, history = [], [], []
    for i in range(layers):
        tar = _layer_tar(rng, i, max(1, files_per_layer), layer_size)
        diff_ids.append(digest_of(tar))
        blobs.append(Blob(gzip.compress(tar, compresslevel=gzip_level, mtime=0), layer_type))
        history.append({"created": "2024-01-01T00:00:00Z", "created_by": "layer %d" % i})
    platform = {"architecture": arch, "os": os_name}
    if variant:
        platform["variant"] = variant
    cfg = dict(platform)
    cfg.update(
        {
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/bin:/bin", "PT_SEED=%s" % seed],
                "Cmd": ["/bin/sh"],
                "Labels": {"org.example.seed": str(seed)},
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
    )
    config = Blob(_json(cfg), DOCKER_CONFIG if docker else OCI_CONFIG)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    if not docker:
        manifest["annotations"] = {"org.example.seed": str(seed)}
    return Image(_json(manifest), media_type, config, blobs, platform)


DEFAULT_PLATFORMS = (("linux", "amd64", None), ("linux", "arm64", "v8"), ("linux", "arm", "v7"))


def make_index(seed, platforms=DEFAULT_PLATFORMS, layers=2, layer_size=32 << 10, docker=False):
    """Build a multi-arch image: one image per (os, arch, variant) plus an index (or, with
    ``docker=True``, a Docker manifest list) over them. Images share no layers."""
    if not platforms:
        raise ValueError("an index needs at least one platform")
    images = [
        make_image(
            seed, layers=layers, layer_size=layer_size, docker=docker, os_name=o, arch=a, variant=v
        )
        for (o, a, v) in platforms
    ]
    media_type = DOCKER_LIST if docker else OCI_INDEX
    entries = []
    for img in images:
        d = {"mediaType": img.media_type, "digest": img.digest, "size": len(img.manifest)}
        d["platform"] = dict(img.platform)
        entries.append(d)
    idx = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    return Index(_json(idx), media_type, images)


def _write_blob(blobdir, digest, data):
    path = os.path.join(blobdir, _hex(digest))
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)


def write_oci_layout(path, refs):
    """Write an OCI image layout at ``path`` holding ``refs`` (dict tag -> Image or Index).

    Each tag becomes one entry of index.json annotated with its ref name, so skopeo can read
    it as ``oci:PATH:TAG``. An existing layout at ``path`` is replaced.
    """
    blobdir = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobdir, exist_ok=True)
    entries = []
    for tag, obj in refs.items():
        for digest, _mt, raw in obj.manifests():
            _write_blob(blobdir, digest, raw)
        for b in obj.blobs():
            _write_blob(blobdir, b.digest, b.data)
        entries.append(
            {
                "mediaType": obj.media_type,
                "digest": obj.digest,
                "size": len(obj.manifest),
                "annotations": {REF_NAME_ANNOTATION: tag},
            }
        )
    with open(os.path.join(path, "oci-layout"), "wb") as f:
        f.write(_json({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(path, "index.json"), "wb") as f:
        f.write(_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))


def write_dir_layout(path, obj):
    """Write ``obj`` (Image or Index) in skopeo's ``dir:`` format at ``path``."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "version"), "wb") as f:
        f.write(DIR_TRANSPORT_VERSION)
    with open(os.path.join(path, "manifest.json"), "wb") as f:
        f.write(obj.manifest)
    if isinstance(obj, Index):
        for img in obj.images:
            with open(os.path.join(path, _hex(img.digest) + ".manifest.json"), "wb") as f:
                f.write(img.manifest)
    for b in obj.blobs():
        _write_blob(path, b.digest, b.data)


def read_oci_layout(path, tag):
    """Return (media type, manifest bytes) of ``tag`` in the OCI layout at ``path``.

    Raises KeyError if the layout has no such tag."""
    with open(os.path.join(path, "index.json"), "rb") as f:
        index = json.load(f)
    for m in index.get("manifests", []):
        if m.get("annotations", {}).get(REF_NAME_ANNOTATION) == tag:
            return m.get("mediaType"), read_oci_blob(path, m["digest"])
    raise KeyError(tag)


def read_oci_blob(path, digest):
    """Bytes of blob ``digest`` in the OCI layout at ``path``."""
    with open(os.path.join(path, "blobs", "sha256", _hex(digest)), "rb") as f:
        return f.read()


def read_dir_layout(path):
    """Return a dict describing a ``dir:`` layout: ``manifest`` (bytes of manifest.json),
    ``instances`` (digest -> bytes of each ``<hex>.manifest.json``) and ``blobs`` (digest ->
    path of each blob file)."""
    out = {"manifest": None, "instances": {}, "blobs": {}}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name == "manifest.json":
            with open(full, "rb") as f:
                out["manifest"] = f.read()
        elif name.endswith(".manifest.json"):
            with open(full, "rb") as f:
                out["instances"]["sha256:" + name[: -len(".manifest.json")]] = f.read()
        elif len(name) == 64 and all(c in "0123456789abcdef" for c in name):
            out["blobs"]["sha256:" + name] = full
    return out


def file_digest(path):
    """sha256 digest of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                break
            h.update(piece)
    return "sha256:" + h.hexdigest()


def _let_traverse(path):
    """Give others search permission on every ancestor of ``path`` that lacks it (private
    temp dirs are 0700), so an unprivileged skopeo can reach ``path``."""
    d = os.path.dirname(os.path.abspath(path))
    while d and d != "/":
        mode = os.stat(d).st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(d, stat.S_IMODE(mode) | stat.S_IXOTH)
        d = os.path.dirname(d)


class Skopeo:
    """Runs skopeo cut off from the host's container state.

    Everything skopeo reads or writes lives under ``workdir`` (owned by the caller, created
    if missing): HOME, TMPDIR, XDG dirs, an empty registries.conf, a permissive policy.json,
    an empty registries.d and an empty auth file. As root, containers/image keeps a blob-info
    cache in /var/lib/containers whatever the environment says, so skopeo then runs as
    ``nobody`` (setpriv), which moves that cache under ``workdir`` too; ``workdir`` is handed
    to that user.

    ``cert_dir``: a directory holding ``ca.crt`` (borrowed); when given, registries are
    reached over verified TLS with it, otherwise over plain HTTP.
    """

    UNPRIVILEGED = 65534

    def __init__(self, workdir, cert_dir=None, timeout=600):
        self.workdir = os.path.abspath(workdir)
        self.cert_dir = cert_dir
        self.timeout = timeout
        for sub in ("home", "tmp", "data", "config", "cache", "run", "registries.d"):
            os.makedirs(os.path.join(self.workdir, sub), exist_ok=True)
        self.registries_conf = os.path.join(self.workdir, "registries.conf")
        with open(self.registries_conf, "w") as f:
            f.write('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
        self.policy = os.path.join(self.workdir, "policy.json")
        with open(self.policy, "w") as f:
            f.write('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        self.auth_file = os.path.join(self.workdir, "auth.json")
        with open(self.auth_file, "w") as f:
            f.write('{"auths": {}}\n')
        self.containers_conf = os.path.join(self.workdir, "containers.conf")
        with open(self.containers_conf, "w") as f:
            f.write("")
        self.drop = os.geteuid() == 0
        if self.drop:
            _let_traverse(self.workdir)
            os.chmod(self.workdir, 0o755)
            for root, dirs, files in os.walk(self.workdir):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), self.UNPRIVILEGED, self.UNPRIVILEGED)
            os.chown(self.workdir, self.UNPRIVILEGED, self.UNPRIVILEGED)

    def env(self):
        w = self.workdir
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": os.path.join(w, "home"),
            "TMPDIR": os.path.join(w, "tmp"),
            "XDG_CONFIG_HOME": os.path.join(w, "config"),
            "XDG_DATA_HOME": os.path.join(w, "data"),
            "XDG_CACHE_HOME": os.path.join(w, "cache"),
            "XDG_RUNTIME_DIR": os.path.join(w, "run"),
            "CONTAINERS_REGISTRIES_CONF": self.registries_conf,
            "CONTAINERS_CONF": self.containers_conf,
            "REGISTRY_AUTH_FILE": self.auth_file,
            "DOCKER_CONFIG": os.path.join(w, "home"),
        }

    def output_dir(self, name):
        """A fresh directory path under workdir for skopeo to write into (not created)."""
        return os.path.join(self.workdir, name)

    def prepare_readable(self, path):
        """Make a tree the caller wrote (e.g. an image layout) readable to skopeo."""
        if self.drop:
            _let_traverse(path)
            for root, dirs, files in os.walk(path):
                os.chmod(root, 0o755)
                for n in files:
                    os.chmod(os.path.join(root, n), 0o644)

    def run(self, *args, check=True, timeout=None, input=None):
        """Run ``skopeo ARGS``; returns subprocess.CompletedProcess (text output). ``input``:
        text for its stdin (e.g. ``login --password-stdin``), else stdin is empty.

        With ``check``, a non-zero exit raises RuntimeError carrying stderr."""
        cmd = ["skopeo", "--policy", self.policy, "--registries.d",
               os.path.join(self.workdir, "registries.d"), "--tmpdir",
               os.path.join(self.workdir, "tmp")] + list(args)
        if self.drop:
            cmd = ["setpriv", "--reuid=%d" % self.UNPRIVILEGED, "--regid=%d" % self.UNPRIVILEGED,
                   "--clear-groups"] + cmd
        p = subprocess.run(cmd, env=self.env(), cwd=self.workdir, capture_output=True, text=True,
                           timeout=timeout or self.timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError("skopeo %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                              p.stderr.strip()[-2000:]))
        return p

    def _tls(self, side):
        # side: "src-", "dest-" or "" (inspect, list-tags, delete).
        if self.cert_dir:
            return ["--%stls-verify=true" % side, "--%scert-dir" % side, self.cert_dir]
        return ["--%stls-verify=false" % side]

    def copy(self, src, dst, all_images=False, extra=(), check=True):
        args = ["copy", "--quiet"]
        if all_images:
            args.append("--all")
        if src.startswith("docker://"):
            args += self._tls("src-")
        if dst.startswith("docker://"):
            args += self._tls("dest-")
        return self.run(*(args + list(extra) + [src, dst]), check=check)

    def inspect(self, ref, raw=False, config=False, extra=(), check=True):
        args = ["inspect"] + self._tls("")
        if raw:
            args.append("--raw")
        if config:
            args.append("--config")
        return self.run(*(args + list(extra) + [ref]), check=check)

    def list_tags(self, ref, check=True):
        return self.run(*(["list-tags"] + self._tls("") + [ref]), check=check)

    def delete(self, ref, check=True):
        return self.run(*(["delete"] + self._tls("") + [ref]), check=check)
