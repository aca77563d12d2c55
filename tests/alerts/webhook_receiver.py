#!/usr/bin/env python3
"""A webhook receiver for Alertmanager in tests: appends every notification it receives, as
one JSON line {"received": <unix time>, "path": "/page", "body": {...}}, to a file.

    webhook_receiver.py --listen 127.0.0.1:0 --out notifications.jsonl --port-file port
"""

import argparse
import http.server
import json
import os
import threading
import time

MAX_BODY = 1 << 20  # Alertmanager batches alerts per group; a test group is far smaller.


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--out", required=True)
    parser.add_argument("--port-file", help="where to write the port actually bound")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self.send_error(413 if length > MAX_BODY else 411)
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self.send_error(400, "body is not JSON")
                return
            line = json.dumps({"received": time.time(), "path": self.path, "body": body})
            with lock, open(args.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *unused):
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
            f.write(str(server.server_address[1]))
        # Renamed into place so a reader never sees a half-written port.
        os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
