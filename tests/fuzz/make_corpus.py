#!/usr/bin/env python3
"""Write the seed corpora for the libFuzzer drivers in tests/fuzz/.

Role: give each fuzzer a few well-formed inputs of every shape it understands, so mutation
starts from the interesting part of the input space instead of from nothing. Real manifests
come from tests/lib/images.py (the same deterministic images the integration tests push);
paths, queries, ranges and digests are written out here.

Usage: tests/fuzz/make_corpus.py [OUTDIR]   (default: tests/fuzz/corpus next to this file)

Each file is corpus/<target>/<name>, in the input layout its driver's header comment
describes: fuzz_manifest, fuzz_query and fuzz_range inputs start with selector bytes, written
here as the ASCII characters '0'..'9', ':'..'?' that the drivers read as 0..15.

Design and invariants: the output is a pure function of this file and images.py (no clock,
no randomness beyond the images' fixed seeds), so re-running it rewrites identical files.
Existing files in a target directory that this script did not write are left alone.
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import images  # noqa: E402  (tests/lib, added to the path above)

# Content-Type selectors of fuzz_manifest.c (content_types[]).
CT_NONE = b"0"
CT_OCI_MANIFEST = b"1"
CT_OCI_INDEX = b"2"
CT_DOCKER_MANIFEST = b"3"
CT_DOCKER_LIST = b"4"
CT_SCHEMA1 = b"5"
CT_OCI_MANIFEST_PARAMS = b"9"
CT_FROM_INPUT = b"?"

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
# The digest and size of "{}", the OCI empty descriptor (image-spec manifest.md).
EMPTY_DIGEST = images.digest_of(b"{}")


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def manifest_seeds():
    img = images.make_image("fuzz", layers=2, layer_size=256)
    dimg = images.make_image("fuzz", layers=1, layer_size=256, docker=True)
    idx = images.make_index("fuzz", layers=1, layer_size=256)
    dlist = images.make_index("fuzz", layers=1, layer_size=256, docker=True)

    # An artifact referring to img (distribution-spec "Listing Referrers"): artifactType,
    # the empty config, subject and annotations.
    sbom = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [
            {
                "mediaType": "application/spdx+json",
                "digest": images.digest_of(b'{"spdxVersion":"SPDX-2.3"}'),
                "size": 26,
            }
        ],
        "subject": {"mediaType": img.media_type, "digest": img.digest, "size": len(img.manifest)},
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    # An index that is itself a referrer, with no mediaType in the body.
    sig_index = {
        "schemaVersion": 2,
        "artifactType": "application/vnd.example.signature.v1",
        "manifests": [
            {"mediaType": images.OCI_MANIFEST, "digest": img.digest, "size": len(img.manifest)}
        ],
        "subject": {"mediaType": idx.media_type, "digest": idx.digest, "size": len(idx.manifest)},
        "annotations": {"org.example.signer": "ci"},
    }
    # An image manifest without mediaType: the type is inferred from "config".
    bare = json.loads(img.manifest)
    del bare["mediaType"]
    schema1 = {
        "schemaVersion": 1,
        "name": "library/app",
        "tag": "1.0",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": EMPTY_DIGEST}],
        "history": [{"v1Compatibility": "{}"}],
    }
    return {
        "oci-image": CT_OCI_MANIFEST + img.manifest,
        "oci-image-ct-params": CT_OCI_MANIFEST_PARAMS + img.manifest,
        "oci-index": CT_OCI_INDEX + idx.manifest,
        "docker-image": CT_DOCKER_MANIFEST + dimg.manifest,
        "docker-list": CT_DOCKER_LIST + dlist.manifest,
        "artifact-no-ct": CT_NONE + _json(sbom),
        "index-referrer-ct-input": CT_FROM_INPUT
        + b"application/vnd.oci.image.index.v1+json; charset=utf-8\n"
        + _json(sig_index),
        "image-inferred": CT_NONE + _json(bare),
        "schema1": CT_SCHEMA1 + _json(schema1),
    }, img, idx


def router_seeds(img, idx):
    blob = img.config.digest.encode()
    return {
        "base": b"/v2/",
        "base-noslash": b"/v2",
        "catalog": b"/v2/_catalog",
        "healthz": b"/healthz",
        "readyz": b"/readyz",
        "metrics": b"/metrics",
        "tags": b"/v2/library/alpine/tags/list",
        "manifest-tag": b"/v2/library/alpine/manifests/3.19",
        "manifest-digest": b"/v2/team/app/manifests/" + img.digest.encode(),
        "blob": b"/v2/team/app/blobs/" + blob,
        "uploads": b"/v2/team/app/blobs/uploads/",
        "uploads-noslash": b"/v2/a/b/c/blobs/uploads",
        "upload": b"/v2/team/app/blobs/uploads/0b1e3c4d-5f60-4a7b-8c9d-0e1f2a3b4c5d",
        "referrers": b"/v2/team/app/referrers/" + idx.digest.encode(),
        "name-keywords": b"/v2/blobs/uploads/manifests/tags/list",
        "percent": b"/v2/team%2fapp/manifests/latest",
    }


def query_seeds():
    # byte 0: key (0 "n", 1 "last", 2 "digest", 3 "mount", 4 "from", 5 "artifactType");
    # byte 1: '0'..'3' occurrence 0..3 with a large output buffer, '4' one byte, '8' eight.
    return {
        "pagination": b"00n=10&last=library%2Falpine",
        "last-plus": b"10n=1000000000&last=a+b",
        "digest": b"20digest=sha256%3A" + EMPTY_DIGEST[7:].encode(),
        "mount": b"30mount=" + EMPTY_DIGEST.encode() + b"&from=library/alpine",
        "artifact-type": b"50artifactType=application%2Fvnd.example.sbom",
        "second-n": b"01n=1&n=2&n=3",
        "small-cap": b"18last=abcdefghij",
        "bad-escape": b"00n=%4&last=%zz",
    }


def range_seeds():
    # byte 0: blob size ('0' 0, '1' 1, '4' 100, '5' 1000, '7' 1 MiB, ':' UINT64_MAX - 1,
    # '?' the next 8 bytes little-endian).
    return {
        "chunk": b"50-999",
        "content-range-rfc": b"5bytes 0-499/1000",
        "content-range-star": b"5bytes 500-999/*",
        "content-range-eq": b"7bytes=1048576-2097151",
        "range": b"5bytes=0-99",
        "range-open": b"5bytes=100-",
        "range-suffix": b"4bytes=-50",
        "range-empty-blob": b"0bytes=0-0",
        "range-huge": b":bytes=0-18446744073709551615",
        "range-size-input": b"?" + (12345).to_bytes(8, "little") + b"bytes=12000-",
        "several": b"5bytes=0-1,5-6",
    }


def digest_seeds(img):
    return {
        "sha256": img.digest.encode(),
        "empty": EMPTY_DIGEST.encode(),
        "sha512": b"sha512:" + b"ab" * 64,
        "upper": img.digest.upper().encode(),
        "multi-algo": b"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    }


def grant_seeds():
    # grant text or pattern, a newline, then the repository name it is matched against
    return {
        "glob": b"team/*:pull,push\nteam/app",
        "deep": b"team/**:pull\nteam/a/b/c",
        "prefix-itself": b"team/**\nteam",
        "inside": b"team/app-*:delete\nteam/app-web",
        "admin": b"admin\nanything/at/all",
        "star-admin": b"*:admin\nx",
        "all-actions": b"lib/*/x/**:*\nlib/a/x/y",
        "one-component": b"*\nno-slash",
        "backtrack": b"*a*a*a*b\naaaaaaaaaaaaaaaaab",
        "bad-admin": b"team/*:admin\nteam/a",
        "bad-double": b"a/**/b:pull\na/x/b",
        "name": b"ci-bot_2.prod",
    }


def auth_header_seeds():
    import base64

    def basic(text):
        return b"Basic " + base64.b64encode(text)

    return {
        "basic": basic(b"alice:s3cret"),
        "basic-colons": basic(b"ci-bot:pa:ss:word"),
        "basic-token": basic(b"ci-1:ptk_" + b"A" * 43),
        "basic-empty-password": basic(b"bob:"),
        "basic-case-spaces": b"bAsIc   " + base64.b64encode(b"u:p") + b" \t",
        "basic-no-colon": basic(b"nocolon"),
        "basic-bad-padding": b"Basic YWxpY2U6cHc",
        "bearer": b"Bearer " + JWT_SEED,
        "bearer-chars": b"Bearer abc-._~+/==",
        "bearer-bad": b"Bearer a,b",
        "other-scheme": b'Digest username="a"',
        "b64url": b"Zm9vYmFy-_8",
    }


def scope_seeds():
    # byte 0: room for entries ('0' one .. '?' sixteen)
    return {
        "pull": b"?repository:samalba/my-app:pull",
        "push-pull": b"?repository:team/app:pull,push",
        "star": b"?repository:a:*",
        "catalog": b"?registry:catalog:*",
        "several": b"?repository:a/b:pull repository:c:push registry:catalog:* repository:a/b:delete",
        "room-one": b"0repository:a:pull repository:b:pull",
        "unknown": b"?repository(plugin):x:pull repository:d:metadata-read,pull",
        "bad-name": b"?repository:A:pull",
    }


# A token signed by fuzz_jwt.c's test key (kid 4mRgqfVAhLhj2YXCU-A4ZA), valid at the driver's
# fixed time for its audience: sub user:alice, pull,push on team/app.
JWT_SEED = (
    b"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjRtUmdxZlZBaExoajJZWENVLUE0WkEifQ."
    b"eyJpc3MiOiJwb3J0b2xhbiIsInN1YiI6InVzZXI6YWxpY2UiLCJhdWQiOiJyZWdpc3RyeS5leGFtcGxlIiwi"
    b"ZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6InNlZWQtanRpIiwiYWNjZXNzIjpbeyJh"
    b"Y3Rpb25zIjpbInB1bGwiLCJwdXNoIl0sInR5cGUiOiJyZXBvc2l0b3J5IiwibmFtZSI6InRlYW0vYXBwIn1dfQ."
    b"AzQdm1rN-potQizn78V7kI7X4UePQ7oDcQOBNxfo5za_xXLQNNk3Iyv9lBNJefkkLmpZ9ys74QPRVhGyIzCpfw"
)
JWT_KID = b"4mRgqfVAhLhj2YXCU-A4ZA"


def jwt_seeds():
    # byte 0: '0' a token as is, '2' a payload the driver signs under a correct header,
    # '3' header and payload separated by a newline, both signed as given.
    aud = "registry.example"
    base = {"iss": "portolan", "aud": aud, "exp": 1700000300, "iat": 1700000000, "jti": "j1"}
    user = dict(base, sub="user:alice", nbf=1699999990,
                access=[{"type": "repository", "name": "team/app", "actions": ["pull", "push"]},
                        {"type": "registry", "name": "catalog", "actions": ["*"]}])
    token = dict(base, sub="token:ci-1",
                 access=[{"type": "repository", "name": "a/b", "actions": ["delete", "admin"]}])
    anon = dict(base, sub="", aud=["other", aud])
    refresh = dict(base, sub="user:bob", typ="refresh")
    expired = dict(base, sub="user:alice", exp=1600000000)
    header = {"alg": "ES256", "typ": "JWT", "kid": JWT_KID.decode()}
    return {
        "token": b"0" + JWT_SEED,
        "token-truncated": b"0" + JWT_SEED[:-10],
        "alg-none": b"0eyJhbGciOiJub25lIn0.e30.",
        "payload-user": b"2" + _json(user),
        "payload-token": b"2" + _json(token),
        "payload-anonymous": b"2" + _json(anon),
        "payload-refresh": b"2" + _json(refresh),
        "payload-expired": b"2" + _json(expired),
        "header-payload": b"3" + _json(header) + b"\n" + _json(user),
        "header-none": b"3" + _json(dict(header, alg="none")) + b"\n" + _json(user),
        "header-dup": b'3{"alg":"ES256","alg":"ES256","kid":"' + JWT_KID + b'"}\n' + _json(user),
    }


def _le(*words):
    return b"".join(struct.pack("<Q", w) for w in words)


def raft_wire_seeds():
    """raft messages as libraft 0.15 writes them (fuzz_raft_wire: byte 0 is the piece size)."""
    entry = _le(3) + bytes([1, 0, 0, 0]) + struct.pack("<I", 8)
    append = _le(1, 40 + 16) + _le(3, 10, 3, 9, 1) + entry + b"hello..."
    heartbeat = _le(1, 48) + _le(3, 10, 3, 9, 0) + _le(0)
    vote = _le(3, 40) + _le(4, 7, 30, 3, 2)
    vote_result = _le(4, 24) + _le(4, 1, 1)
    append_result = _le(2, 24) + _le(4, 0, 31)
    timeout_now = _le(6, 24) + _le(4, 31, 4)
    snapshot = _le(5, 48 + 8) + _le(4, 100, 4, 90, 8) + _le(0) + _le(4) + b"snap"
    return {
        "append": b"0" + append,
        "append-bytewise": b"1" + append,
        "heartbeat": b"3" + heartbeat,
        "vote": b"0" + vote,
        "results": b"7" + vote_result + append_result + timeout_now,
        "snapshot": b"5" + snapshot,
        "stream": b"0" + append + heartbeat + vote + snapshot,
        "entries-overrun": b"0" + _le(1, 48) + _le(3, 10, 3, 9, 1 << 20),
        "term-max": b"0" + _le(3, 40) + _le(2**64 - 1, 7, 1, 1, 2),
    }


def _hello_header(type_, flags, body_len):
    return b"\x89PTRAFT\n" + struct.pack(">HBBI", 1, type_, flags, body_len)


def handshake_seeds():
    """fuzz_handshake: byte 0 picks header (0 HELLO, 1 WELCOME) or body (2 HELLO, 3 WELCOME)."""
    cluster, address = b"prod-eu", b"node-1.portolan:7000"
    hello = struct.pack(">QHH", 2, len(cluster), len(address)) + cluster + address
    welcome = struct.pack(">QH", 1, len(cluster)) + cluster
    return {
        "hello-header": b"0" + _hello_header(1, 0, len(hello)),
        "hello-header-bulk": b"0" + _hello_header(1, 3, len(hello)),
        "welcome-header": b"1" + _hello_header(2, 1, len(welcome)),
        "hello": b"2" + hello,
        "hello-v6": b"2" + struct.pack(">QHH", 2, len(cluster), 16) + cluster + b"[2001:db8::1]:70",
        "welcome": b"3" + welcome,
    }


def _pb_varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _pb_field(num, wire, payload):
    key = _pb_varint(num << 3 | wire)
    if wire == 0:
        return key + _pb_varint(payload)
    return key + _pb_varint(len(payload)) + payload


def peer_frame_seeds(img):
    """fuzz_peer_frame: one PeerFrame (proto/peer.proto) after its length prefix."""
    def frame(call_id, type_, response, body, status=0):
        f = _pb_field(1, 0, call_id) + _pb_field(2, 0, type_)
        if response:
            f += _pb_field(3, 0, 1)
        if status:
            f += _pb_field(4, 0, status & 0xFFFFFFFFFFFFFFFF)
        return f + _pb_field(5, 2, body)
    want = _pb_field(1, 2, img.digest.encode()) + _pb_field(2, 0, 1 << 20) + _pb_field(3, 0, 1 << 20)
    chunk = _pb_field(1, 0, 0) + _pb_field(2, 0, 5) + _pb_field(3, 2, b"hello")
    return {
        "ping": frame(1, 1, False, _pb_field(1, 0, 123456)),
        "propose": frame(2, 2, False, _pb_field(1, 2, b"\x08\x01")),
        # a Command led by its write id (field 5), as pt_command_stamp leaves it
        "propose-write-id": frame(2, 2, False,
                                  _pb_field(1, 2, _pb_field(5, 2, bytes(range(24))) + b"\x08\x01")),
        # a Command with the quota and throttle operations (op fields 60 and 62)
        "propose-quota": frame(2, 2, False, _pb_field(1, 2, b"\x08\x01" + _pb_field(
            4, 2, _pb_field(60, 2, _pb_field(1, 2, b"team/*") + _pb_field(2, 0, 10 << 30))))),
        "propose-throttle": frame(2, 2, False, _pb_field(1, 2, b"\x08\x01" + _pb_field(
            4, 2, _pb_field(62, 2, _pb_field(1, 2, b"user:ci") + _pb_field(2, 0, 2)
                            + _pb_field(4, 0, 600))))),
        "propose-result": frame(2, 2, True, _pb_field(1, 0, 0) + _pb_field(2, 0, 42)),
        "read-index": frame(3, 3, False, b""),
        "blob-want": frame(4, 4, False, want),
        "blob-chunk": frame(4, 4, True, chunk),
        "error": frame(5, 4, True, b"", status=-3),
    }


def framing_seeds():
    """fuzz_framing: the whole input is a raw HTTP/1 request head."""
    get = b"GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n"
    return {
        "plain-get": get,
        "content-length": b"PUT /v2/a/blobs/uploads/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "same-length-twice": b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        "differing-lengths": b"POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 40\r\n\r\n",
        "length-list": b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n",
        "length-and-chunked": b"POST / HTTP/1.1\r\nContent-Length: 4\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get,
        "chunked": b"PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "bare-lf": b"POST / HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\n",
        "unfinished": b"GET / HTTP/1.1\r\nHost: a\r\n",
    }


SNAP_FAMILIES = ["default", "repos", "manifests", "tags", "repo_blobs", "referrers",
                 "blob_locations", "meta"]


def _snap_stream(index, records):
    """A snapshot stream (node/store/metastore_snapshot.c) of records {family: [(k, v)]}."""
    import hashlib
    out = b"PTLNSNAP" + struct.pack("<IQI", 1, index, len(SNAP_FAMILIES))
    for fam in SNAP_FAMILIES:
        recs = sorted(records.get(fam, []))
        out += bytes([len(fam)]) + fam.encode() + struct.pack("<Q", len(recs))
        for k, v in recs:
            out += struct.pack("<I", len(k)) + k + struct.pack("<I", len(v)) + v
    return out + hashlib.sha256(out).digest()


def snapshot_seeds():
    """fuzz_snapshot: byte 0 < 0x80 is a descriptor or a file name, else a stream read in
    pieces of (byte 0 & 15) + 1 bytes."""
    import hashlib
    empty = _snap_stream(0, {})
    some = _snap_stream(42, {"repos": [(b"library/a", b"\x01\x02"), (b"library/b", b"\x01\x03")],
                             "tags": [(b"library/a\x00latest", b"\x01tag")],
                             "meta": [(b"gc", b"\x01")]})
    desc = b"PTLNSDSC" + struct.pack("<IIQQ", 1, 0, 42, len(some)) + \
        hashlib.sha256(some).digest() + struct.pack("<Q", 1)
    return {"desc": b"D" + desc, "name": b"D42.pts", "name-max": b"D18446744073709551615.pts",
            "name-path": b"D../1.pts", "empty-whole": b"\x80" + empty,
            "some-7": b"\x86" + some, "some-1": b"\x80" + some,
            "truncated": b"\x83" + some[:-5]}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    manifests, img, idx = manifest_seeds()
    targets = {
        "fuzz_manifest": manifests,
        "fuzz_router": router_seeds(img, idx),
        "fuzz_query": query_seeds(),
        "fuzz_range": range_seeds(),
        "fuzz_digest": digest_seeds(img),
        "fuzz_grant": grant_seeds(),
        "fuzz_tag_glob": {"prefix": b"v*\nv1.2.3", "star": b"*\n", "stars": b"a*b*c\naxxbyc",
                          "miss": b"rel-*-x\nrel-1-y", "exact": b"exact\nexact",
                          "invalid": b"v?\nv1", "run": b"***\nabc"},
        "fuzz_auth_header": auth_header_seeds(),
        "fuzz_scope": scope_seeds(),
        "fuzz_jwt": jwt_seeds(),
        "fuzz_raft_wire": raft_wire_seeds(),
        "fuzz_handshake": handshake_seeds(),
        "fuzz_peer_frame": peer_frame_seeds(img),
        "fuzz_framing": framing_seeds(),
        "fuzz_snapshot": snapshot_seeds(),
    }
    for target, seeds in targets.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    print("wrote %d seeds under %s" % (sum(len(s) for s in targets.values()), out))


if __name__ == "__main__":
    main()
