#!/usr/bin/env python3
"""A small HTTP receiver for the notification tests: records every request and answers 200.

    scripts/http-receiver.py --record FILE --port-file FILE [--port N]

Each request is appended to the record file as one JSON line: method, path (with the query),
headers, body (UTF-8 text). A path containing `/status-NNN` is answered with HTTP NNN instead of
200 (for retry tests); a 3xx answer points (`Location`) at `/redirected` on the same receiver; a
path containing `/sleep-N` is recorded at once and answered N seconds later (a receiver that
hangs). The port (0: any free one) is written to the port file once listening, so a test knows
when it may send. Standard library only; listens on 127.0.0.1.
"""
import argparse
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            entry = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            with LOCK, open(args.record, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
            hang = re.search(r"/sleep-(\d+)", self.path)
            if hang:
                time.sleep(int(hang.group(1)))
            m = re.search(r"/status-(\d{3})", self.path)
            code = int(m.group(1)) if m else 200
            reply = b"OK" if code == 200 else b"no"
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            if 300 <= code < 400:
                self.send_header("Location", "/redirected")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_PUT = handle_any

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
