#!/usr/bin/env python3
"""A webhook receiver that checks Riposte's notifications with the Standard
Webhooks reference library (PyPI `standardwebhooks`), as a SOAR platform or
an in-house receiver built on it would.

Every POST is verified with `Webhook(secret).verify(body, headers)`: 204 when
it passes, 401 when it does not. Each request is appended to the record file
as one JSON line (verdict, the library's error, the webhook-* headers, the
body in base64) for the test to read and to replay, tampered.

Usage: standard_webhooks.py --secret whsec_... --record FILE [--port 0]
Prints "listening PORT" on stdout once it accepts connections.
"""

import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="whsec_<base64> signing secret")
    parser.add_argument("--record", required=True, help="file to append one JSON line per request to")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    webhook = Webhook(args.secret)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server name)
            length = int(self.headers.get("content-length") or 0)
            if length < 0 or length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            error = None
            try:
                webhook.verify(body, headers)
            except WebhookVerificationError as e:
                error = str(e)
            except Exception as e:  # a malformed body or header is a rejection too
                error = f"{type(e).__name__}: {e}"
            record = {
                "ok": error is None,
                "error": error,
                "path": self.path,
                "headers": {k: v for k, v in headers.items() if k.startswith("webhook-")},
                "content_type": headers.get("content-type"),
                "body": base64.b64encode(body).decode(),
            }
            with lock, open(args.record, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            self.send_response(204 if error is None else 401)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
