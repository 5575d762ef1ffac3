"""
tls_helpers.py - certificates and TLS clients for the tests (not a test).

Owns the TLS side of testing (the TLS echo upstream is in upstreams.py):
TestCA, a throwaway certificate authority in a temporary directory that
issues server and client certificates with the openssl command
(openssl_cmd); tls_client_context for python clients; s_client for
`openssl s_client` runs; peer_serial, which certificate a TLS listener
presents.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile

from harness_env import HOST
from tap import TestFailure, at_cleanup


def openssl_cmd(args, timeout=30, input_data=None):
    """Run the openssl command; (rc, stdout+stderr text)."""
    p = subprocess.run(["openssl"] + list(args), input=input_data,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


class TestCA:
    """
    A throwaway certificate authority in a temporary directory, made with
    the openssl command (EC P-256 keys: fast).  issue() makes leaf
    certificates signed by it.
    """

    def __init__(self, name="wsgate test CA"):
        self.dir = tempfile.mkdtemp(prefix="wsgate-ca-")
        at_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.name = name
        self.cert = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca.key")
        self._run(["req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                   self.key, "-out", self.cert, "-days", "30", "-subj",
                   "/CN=%s" % name, "-addext",
                   "basicConstraints=critical,CA:TRUE", "-addext",
                   "keyUsage=critical,keyCertSign,cRLSign"])

    def _run(self, args):
        rc, out = openssl_cmd(args)
        if rc != 0:
            raise TestFailure("openssl %s failed:\n%s" % (args[0], out))

    def issue(self, cn, dns=(), ips=(), serial=1, days=30, client=False,
              stem=None, org=None):
        """A leaf certificate and key; returns (cert_path, key_path).
        DAYS=0 makes one that expires within the second."""
        stem = os.path.join(self.dir, stem or "%s-%d" % (
            re.sub(r"[^A-Za-z0-9]+", "_", cn), serial))
        key, csr, crt, ext = (stem + ".key", stem + ".csr", stem + ".pem",
                              stem + ".ext")
        subj = "/CN=%s" % cn + ("/O=%s" % org if org else "")
        self._run(["req", "-new", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                   "-out", csr, "-subj", subj])
        sans = ["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write("extendedKeyUsage=%s\n"
                    % ("clientAuth" if client else "serverAuth"))
            if sans:
                f.write("subjectAltName=%s\n" % ",".join(sans))
        self._run(["x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey",
                   self.key, "-set_serial", str(serial), "-days", str(days),
                   "-extfile", ext, "-out", crt])
        return crt, key


def tls_client_context(ca=None, cert=None, key=None, verify=True):
    """A client SSLContext trusting CA (a TestCA or a file), with an
    optional client certificate."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(ca.cert if isinstance(ca, TestCA) else ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def s_client(port, args=(), timeout=10, send=b""):
    """Run `openssl s_client` against 127.0.0.1:PORT with ARGS, sending
    SEND then closing stdin; (rc, output)."""
    return openssl_cmd(["s_client", "-connect", "%s:%d" % (HOST, port)]
                       + list(args), timeout=timeout,
                       input_data=send or b"")


def peer_serial(port, ca, server_name="localhost", timeout=5):
    """The serial number (int) of the certificate the TLS server on PORT
    presents for SERVER_NAME, verified against CA."""
    import ssl
    ctx = tls_client_context(ca)
    ctx.check_hostname = False
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            return int(s.getpeercert()["serialNumber"], 16)
