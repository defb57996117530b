"""A tiny predictor for the local AI Core's lifecycle tests (process runtime, no model).

It exercises the emulator's real process handling (spawn, health check, logs, exit → DEAD,
stop, proxy switch on update) in well under a second, where infinity needs ~10 s. It answers
GET /health and echoes which configuration served a request; it embeds nothing.
Env: PORT, HOST, MODEL_SERVE_NAME (echoed), FAIL_WITH (exit with this message at start).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {"ok": True})
        else:
            self._json(200, {"served_by": os.environ.get("MODEL_SERVE_NAME"), "path": self.path})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._json(200, {"served_by": os.environ.get("MODEL_SERVE_NAME"), "path": self.path})

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write("fake-predictor: " + fmt % args + "\n")


if os.environ.get("FAIL_WITH"):
    print(f"fake-predictor: {os.environ['FAIL_WITH']}", file=sys.stderr, flush=True)
    sys.exit(3)
server = ThreadingHTTPServer(
    (os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler
)
print(
    f"fake-predictor: serving {os.environ.get('MODEL_SERVE_NAME')} on {server.server_port}",
    flush=True,
)
server.serve_forever()
