"""A stand-in for EC2 instance metadata (IMDSv2 only) on 127.0.0.1, for the real aws CLI.

It serves the host role's credentials the way EC2 does: a PUT for a session token first, then
GETs that must carry it (a GET without one is refused, as with `httpTokens: required`). The
CLI and SDKs find it through AWS_EC2_METADATA_SERVICE_ENDPOINT, so a profile with
`credential_source = Ec2InstanceMetadata` works unchanged, exactly as on the host.

The hop limit: EC2 sends the answer to the token PUT with an IP TTL of the instance's
`httpPutResponseHopLimit`, so a client more hops away (a container behind the host's bridge is
2) never receives its token; the request itself arrives, and GETs are answered normally. The
stand-in cannot drop packets on 127.0.0.1, so it models that effect: constructed for a client
`hops` away, it withholds the PUT's answer when `hops > hop_limit` until the client gives up.
"""

from __future__ import annotations

import json
import select
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "imds-session-token"
ROLE_PATH = "/latest/meta-data/iam/security-credentials/"


class Imds:
    def __init__(
        self,
        role_name: str,
        credentials: Mapping[str, Any],
        *,
        hop_limit: int = 2,
        hops: int = 1,
    ) -> None:
        self.role_name = role_name
        self.credentials = credentials
        self.hop_limit = hop_limit
        """The instance's httpPutResponseHopLimit."""
        self.hops = hops
        """How many hops away the client is: 1 on the host, 2 in a container."""
        self.requests: list[tuple[str, str, bool]] = []
        """(method, path, carried a token)."""
        self.withheld = 0
        """Token answers that did not reach the client (its hops exceed the hop limit)."""
        self._stopped = threading.Event()
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                imds.requests.append(("PUT", self.path, False))
                if self.path == "/latest/api/token" and imds.hops > imds.hop_limit:
                    # The answer dies on the way (TTL); the client times out, then closes.
                    imds.withheld += 1
                    deadline = time.monotonic() + 10
                    while not imds._stopped.wait(0.02) and time.monotonic() < deadline:
                        if select.select([self.connection], [], [], 0)[0]:
                            break  # the client gave up and closed the connection
                    self.close_connection = True
                elif self.path == "/latest/api/token":
                    self._send(200, TOKEN)
                else:
                    self._send(404, "")

            def do_GET(self) -> None:
                token = self.headers.get("X-aws-ec2-metadata-token") == TOKEN
                imds.requests.append(("GET", self.path, token))
                if not token:
                    self._send(401, "")  # IMDSv2 required: no token, no answer
                elif self.path == ROLE_PATH:
                    self._send(200, imds.role_name)
                elif self.path == ROLE_PATH + imds.role_name:
                    creds = imds.credentials
                    expiration = creds["Expiration"]
                    self._send(
                        200,
                        json.dumps(
                            {
                                "Code": "Success",
                                "Type": "AWS-HMAC",
                                "AccessKeyId": creds["AccessKeyId"],
                                "SecretAccessKey": creds["SecretAccessKey"],
                                "Token": creds["SessionToken"],
                                "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            }
                        ),
                    )
                else:
                    self._send(404, "")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def stop(self) -> None:
        self._stopped.set()
        self.server.shutdown()
