"""A stand-in for the Golden VCR auth service's GET /access, for
bench/auth_flood.sh: one token is a broadcaster, every other is 401. GET
/calls says how many /access calls it answered."""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VALID = "Bearer bench-broadcaster-token"
calls = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global calls
        if self.path == "/calls":
            return self.answer(200, {"calls": calls})
        if self.path != "/access":
            return self.answer(404, {"error": "not found"})
        with lock:
            calls += 1
        if self.headers.get("Authorization") == VALID:
            return self.answer(200, {"user": {"id": "1", "login": "streamer"}, "role": "broadcaster"})
        return self.answer(401, {"error": "bad token"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
