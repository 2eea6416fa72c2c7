"""Mutual TLS on the raft + peer port: three regions whose links run TLS 1.3 with the cluster's
certificates, and connections to a region's raft port that must all be refused.

Role: checks, against real `portolan serve` processes started by tests/lib/cluster.py with
peer TLS on (certificates from `portolan cluster certs`), that only the regions of the
cluster can hold a connection to a region's raft + peer port:
  - control: region-b's own certificate with region-b's server id completes the handshake
    (WELCOME) on the raft, PEER and BULK channels: the probes below speak the protocol right;
  - refused, each on the raft, PEER and BULK channel kinds where a certificate is involved:
    (a) no client certificate; (b) a certificate for region-b from another CA; (c) region-b's
    valid certificate claiming region-c's server id; (d) an expired certificate for region-b
    signed by the cluster CA (made with `openssl ca -startdate/-enddate`); (e) plaintext
    garbage instead of a TLS handshake; (f) a valid certificate of the cluster CA for
    region-x, with an id that is not a member, and with region-b's id;
  - the refused region logs each refusal with its reason (no client certificate, unknown CA,
    expired, not TLS, names another region, not a member), and each authenticated link
    with its region name;
  - afterwards the region still serves, the leader is agreed, and a tag pushed at a follower
    is read in every region;
  - secure by default: `portolan serve` with a cluster file and no peer certificates refuses
    to start, and so does `--peer-tls off` when a region's raft address is not loopback
    (the addresses are never dialed: the configuration is refused first).
"""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 180
MAGIC = b"\x89PTRAFT\n"
FLAGS = {"raft": 0, "peer": 1, "bulk": 3}
NOT_A_MEMBER = 24


def hello(cluster_id, server_id, address, flags):
    body = struct.pack(">QHH", server_id, len(cluster_id), len(address)) + cluster_id.encode() \
        + address.encode()
    return MAGIC + struct.pack(">HBBI", 1, 1, flags, len(body)) + body


def probe(port, cluster_id, server_id, flags, cert=None, key=None, ca=None, raw=None):
    """Connects to 127.0.0.1:port, runs TLS (client certificate cert/key, or none; the server
    is not verified here: the server side is under test), sends a HELLO for server_id and
    returns "welcome" when a WELCOME header arrives, else what ended the attempt. raw: send
    these bytes over plain TCP instead."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if raw is not None:
            s.sendall(raw)
            conn = s
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if cert is not None:
                ctx.load_cert_chain(cert, key)
            conn = ctx.wrap_socket(s, server_hostname="region-a")
            conn.sendall(hello(cluster_id, server_id, "127.0.0.1:1", flags))
        got = b""
        while len(got) < 16:
            chunk = conn.recv(16 - len(got))
            if not chunk:
                return "closed"
            got += chunk
        if got[:8] == MAGIC and got[10] == 2:
            return "welcome"
        return "answered %r" % got
    except (OSError, ssl.SSLError) as e:
        return "refused: %s" % e.__class__.__name__
    finally:
        s.close()


def ossl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, cwd=cwd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_expired(work, certs, name):
    """A certificate for name (SAN DNS:name) signed by the cluster CA, valid only in 2020."""
    d = os.path.join(work, "expired")
    os.makedirs(os.path.join(d, "new"))
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = c\n[c]\ndir = %s\ndatabase = $dir/index.txt\n"
                "new_certs_dir = $dir/new\nserial = $dir/serial\ndefault_md = sha256\n"
                "policy = p\nunique_subject = no\ncopy_extensions = none\n"
                "[p]\ncommonName = supplied\n"
                "[ext]\nsubjectAltName = DNS:%s\nextendedKeyUsage = serverAuth,clientAuth\n"
                "basicConstraints = CA:FALSE\n" % (d, name))
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    key, csr, crt = (os.path.join(d, x) for x in ("key.pem", "req.csr", "cert.pem"))
    ossl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-subj", "/CN=%s" % name, "-out", csr)
    ossl("ca", "-batch", "-config", os.path.join(d, "ca.cnf"), "-cert",
         os.path.join(certs, "ca.pem"), "-keyfile", os.path.join(certs, "ca-key.pem"),
         "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-extensions", "ext",
         "-in", csr, "-out", crt)
    return crt, key


def serve_refused(binary, work, cluster_yaml, extra):
    """Runs `portolan serve` with a cluster file that must be refused; returns (exit status,
    stderr)."""
    path = os.path.join(work, "cluster-%d.yaml" % len(os.listdir(work)))
    with open(path, "w") as f:
        f.write(cluster_yaml)
    data = tempfile.mkdtemp(dir=work)
    p = subprocess.run([binary, "serve", "--region", "region-a", "--cluster-file", path,
                        "--data-dir", data, "--listen", "127.0.0.1:%d" % h.free_port()] + extra,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


def config_checks(results, work):
    t = results
    binary = h.portolan_bin()
    loopback = ("cluster_id: t\nregions:\n"
                "  - {name: region-a, id: 1, address: '127.0.0.1:%d', url: 'http://127.0.0.1:1'}\n"
                "  - {name: region-b, id: 2, address: 'localhost:%d', url: 'http://127.0.0.1:2'}\n"
                % (h.free_port(), h.free_port()))
    remote = loopback.replace("localhost:", "region-b.example:")

    @results.test
    def secure_by_default():
        rc, err = serve_refused(binary, work, loopback, [])
        t.check(rc != 0 and "peer_tls: a cluster needs peer_tls_cert" in err,
                "no certificates: exit %d, %s" % (rc, err[-300:]))
        rc, err = serve_refused(binary, work, remote, ["--peer-tls", "off"])
        t.check(rc != 0 and "region region-b's raft address region-b.example" in err,
                "--peer-tls off with a remote region: exit %d, %s" % (rc, err[-300:]))


def main(results):
    if shutil.which("openssl") is None:
        raise h.Skip("openssl is not installed")
    work = tempfile.mkdtemp(prefix="pt-peer-tls-")
    try:
        config_checks(results, work)
        run(results, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(results, work):
    t = results
    with cluster.Cluster(3, peer_tls=True) as c:
        c.wait_leader()
        a, b, cc = c.regions
        certs = cluster.peer_certs(c.binary)
        bin_ = c.binary
        subprocess.run([bin_, "cluster", "certs", "--out", os.path.join(work, "other"),
                        "--regions", b.name], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([bin_, "cluster", "certs", "--out", os.path.join(work, "extra"), "--ca",
                        certs, "--regions", "region-x"], check=True, stdout=subprocess.DEVNULL)
        b_cert, b_key = os.path.join(certs, b.name + ".pem"), os.path.join(certs, b.name + "-key.pem")
        other = (os.path.join(work, "other", b.name + ".pem"),
                 os.path.join(work, "other", b.name + "-key.pem"))
        extra = (os.path.join(work, "extra", "region-x.pem"),
                 os.path.join(work, "extra", "region-x-key.pem"))
        expired = make_expired(work, certs, b.name)
        port, cid = a.raft_port, c.cluster_id

        @results.test
        def control_handshake_completes():
            for kind, flags in FLAGS.items():
                got = probe(port, cid, b.id, flags, b_cert, b_key)
                t.check(got == "welcome", "%s channel with region-b's certificate and id: %s"
                        % (kind, got))

        @results.test
        def refused_connections():
            cases = []
            for kind, flags in FLAGS.items():
                cases += [
                    ("(a) no client certificate, %s" % kind, dict(server_id=b.id, flags=flags)),
                    ("(b) another CA, %s" % kind,
                     dict(server_id=b.id, flags=flags, cert=other[0], key=other[1])),
                    ("(c) region-b's certificate claiming region-c's id, %s" % kind,
                     dict(server_id=cc.id, flags=flags, cert=b_cert, key=b_key)),
                    ("(d) expired certificate, %s" % kind,
                     dict(server_id=b.id, flags=flags, cert=expired[0], key=expired[1])),
                    ("(f) region-x, not a member, %s" % kind,
                     dict(server_id=NOT_A_MEMBER, flags=flags, cert=extra[0], key=extra[1])),
                    ("(f) region-x claiming region-b's id, %s" % kind,
                     dict(server_id=b.id, flags=flags, cert=extra[0], key=extra[1])),
                ]
            for what, kw in cases:
                got = probe(port, cid, kw.pop("server_id"), kw.pop("flags"), **kw)
                t.check(got != "welcome", "%s: got a WELCOME" % what)
            for raw in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(512),
                        hello(cid, b.id, "127.0.0.1:1", 0)):
                got = probe(port, cid, b.id, 0, raw=raw)
                t.check(got != "welcome", "(e) plaintext %r...: got a WELCOME" % raw[:12])

        @results.test
        def refusals_and_identities_logged():
            deadline = time.monotonic() + 10
            wanted = ["no client certificate", "unknown CA", "certificate expired",
                      "not a TLS 1.3 handshake", "does not name the region",
                      "unknown server id"]
            missing = wanted
            while missing and time.monotonic() < deadline:
                missing = [w for w in wanted if not a.log_grep(w)]
                time.sleep(0.2)
            t.check(not missing, "region-a's log lacks the reasons %s" % missing)
            t.check(bool(a.log_grep("peer authenticated", b.name)),
                    "region-a's log names no authenticated link from region-b")
            for line in a.log_grep("raft transport") or []:
                t.check("PRIVATE KEY" not in line, "key material in the log: %s" % line[:80])

        @results.test
        def cluster_keeps_serving():
            for r in c.regions:
                t.check(r.running(), "%s died: %s" % (r.name, r.node.death_note()))
            lead2 = c.wait_leader(timeout=20)
            follower = [r for r in c.regions if r is not lead2][0]
            repo = h.unique_repo("peertls")
            img = h.make_image(layers=1, layer_size=2048)
            with follower.client() as cl:
                img.push(cl, repo, "v1")
            c.wait_converged(timeout=30)
            for r in c.regions:
                with r.client() as cl:
                    got = cl.get_manifest(repo, "v1")
                t.check(got.status == 200 and got.body == img.bytes,
                        "%s: tag v1 pushed at %s: %s" % (r.name, follower.name, got.describe()))
