#!/usr/bin/env python3
"""A small smart-HTTP git server for the demo: `git http-backend` behind HTTP basic auth.

    git-http-server.py ROOT PORT_FILE      serve the bare repositories under ROOT on 127.0.0.1

The user is x-access-token and the password is the value of the environment variable
GIT_DEMO_TOKEN, as GitHub expects. The chosen port is written to PORT_FILE. Loopback only.
GIT_DEMO_DELAY (seconds, default 0) holds back every pack, so that a clone lasts that long.
"""
import base64
import hmac
import http.server
import os
import subprocess
import sys
import time

ROOT, PORT_FILE = sys.argv[1], sys.argv[2]
TOKEN = os.environ["GIT_DEMO_TOKEN"]
BACKEND = "/usr/lib/git-core/git-http-backend"
DELAY = float(os.environ.get("GIT_DEMO_DELAY", "0"))


class Handler(http.server.BaseHTTPRequestHandler):
    def authorised(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == "x-access-token" and hmac.compare_digest(password, TOKEN)

    def serve(self):
        if not self.authorised():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="slipway demo"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": ROOT,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding") == "gzip":
            env["HTTP_CONTENT_ENCODING"] = "gzip"
        if self.command == "POST" and DELAY > 0:
            time.sleep(DELAY)
        out = subprocess.run([BACKEND], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            name, _, value = line.decode().partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = serve
    do_POST = serve

    def log_message(self, fmt, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
