"""uvicorn's HTTP/1.1 protocol with the service's error shape for requests it cannot even parse.

A bad Content-Length or a malformed request line never reaches the app: uvicorn answers it with a
plain-text 400. `triage serve` uses this subclass so that clients get the documented JSON body.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.errors import error_body

BAD_REQUEST = json.dumps(
    error_body(
        "bad_request", "请求格式错误（如 Content-Length 无效）", "malformed HTTP request (e.g. a bad Content-Length)"
    ),
    ensure_ascii=False,
).encode()


class JsonErrorH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BAD_REQUEST)).encode()),
            (b"connection", b"close"),
        ]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=BAD_REQUEST)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()
