# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A tiny webhook receiver for the lab: stands in for Slack, the pager and team webhooks.

Usage: ``python3 lab/webhook_receiver.py [PORT] [FILE] [HOST]`` (defaults 8765, /tmp/ds-webhooks.jsonl, 127.0.0.1).

* ``POST <any path>`` appends ``{"ts", "path", "body"}`` (body parsed as JSON, else text) as one JSON
  line to FILE and answers ``200 {"ok": true}``. Paths tell channels apart
  (``http://127.0.0.1:8765/slack``, ``/pager``, ``/team``). A path starting with ``/status/<code>``
  is recorded too but answered with that HTTP status, to exercise delivery failures.
* ``GET /messages`` returns the recorded lines as a JSON list; ``DELETE /messages`` clears them.

It only ever binds a loopback address, or the gateway of one of the lab's own podman networks (``dslab``
10.213.47.1, ``dsmol`` 10.213.48.1) when lab hosts must reach it (a runner host notifying): ``... PORT FILE HOST``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_PORT = 8765
DEFAULT_FILE = '/tmp/ds-webhooks.jsonl'
LAB_GATEWAYS = ('10.213.47.1', '10.213.48.1')  # the lab's own podman networks (docs/lab.md), reachable only from its hosts
MAX_BODY = 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    server_version = 'ds-webhook-receiver/1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _reply(self, code, payload):
        data = json.dumps(payload).encode('utf-8')
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # pylint: disable=invalid-name
        if self.path.rstrip('/') == '/shutdown':
            self._reply(200, {'ok': True})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return
        length = int(self.headers.get('Content-Length') or 0)
        if length > MAX_BODY:
            self._reply(413, {'ok': False, 'error': 'body too large'})
            return
        raw = self.rfile.read(length).decode('utf-8', errors='replace')
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        self.server.record({'ts': time.time(), 'path': self.path, 'body': body})
        parts = self.path.split('/')
        if len(parts) > 2 and parts[1] == 'status' and parts[2].isdigit() and 100 <= int(parts[2]) <= 599:
            self._reply(int(parts[2]), {'ok': False})
            return
        self._reply(200, {'ok': True})

    def do_GET(self):  # pylint: disable=invalid-name
        if self.path.rstrip('/') == '/messages':
            self._reply(200, self.server.messages())
        elif self.path.rstrip('/') == '/health':
            # Which file this receiver records into, and whether it still can (its checkout may be gone):
            # callers reuse a running receiver only when it records where they read.
            directory = os.path.dirname(os.path.abspath(self.server.record_file))
            self._reply(200, {'file': os.path.abspath(self.server.record_file),
                              'writable': os.path.isdir(directory) and os.access(directory, os.W_OK)})
        else:
            self._reply(404, {'ok': False, 'error': 'GET /messages or /health only'})

    def do_DELETE(self):  # pylint: disable=invalid-name
        if self.path.rstrip('/') == '/messages':
            self.server.clear()
            self._reply(200, {'ok': True})
        else:
            self._reply(404, {'ok': False, 'error': 'DELETE /messages only'})


class WebhookReceiver(ThreadingHTTPServer):
    """HTTP server recording every POST to ``path``; refuses non-loopback addresses."""

    daemon_threads = True

    def __init__(self, port=DEFAULT_PORT, path=DEFAULT_FILE, host='127.0.0.1'):
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback and host not in LAB_GATEWAYS:
            raise ValueError('refusing to bind %r: the webhook receiver only listens on a loopback address or a lab network '
                             'gateway (%s)' % (host, ', '.join(LAB_GATEWAYS)))
        self.record_file = path
        self.lock = threading.Lock()
        super().__init__((host, int(port)), Handler)

    def record(self, entry):
        with self.lock:
            with open(self.record_file, 'a', encoding='utf-8') as handle:
                handle.write(json.dumps(entry) + '\n')

    def messages(self):
        with self.lock:
            try:
                with open(self.record_file, 'r', encoding='utf-8') as handle:
                    return [json.loads(line) for line in handle if line.strip()]
            except FileNotFoundError:
                return []

    def clear(self):
        with self.lock:
            with open(self.record_file, 'w', encoding='utf-8'):
                pass


def main(argv):
    port = int(argv[1]) if len(argv) > 1 else DEFAULT_PORT
    path = argv[2] if len(argv) > 2 else DEFAULT_FILE
    host = argv[3] if len(argv) > 3 else '127.0.0.1'
    server = WebhookReceiver(port, path, host)
    print('listening on http://%s:%d, recording to %s' % (server.server_address[0], server.server_address[1], path), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == '__main__':
    main(sys.argv)
