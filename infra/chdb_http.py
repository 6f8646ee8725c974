"""A ClickHouse HTTP front over chdb: the part of ClickHouse's HTTP interface clickhouse-connect uses.

No modern ClickHouse server installs here (DESIGN §8), so the tests reach the real
engine (chdb, in this process) through clickhouse-connect's real HTTP client and
this small server. It is also how one process can own an embedded analytics
directory while others write to it over HTTP (``python -m botkiln.infra.chdb_http``).

What it speaks (ClickHouse's ``/`` handler, loopback only, no authentication):

- ``GET /ping`` → ``Ok.``;
- SQL in the ``query`` URL parameter, the body, or both (joined by a newline);
  an ``INSERT … FORMAT F`` takes the rest of the body as its data, which may be
  ``Content-Encoding: lz4`` (one lz4 frame per block: frames are decoded in a loop),
  ``gzip``, ``deflate`` or ``zstd``, and chunked;
- ``param_NAME`` → the server-side parameter ``{NAME:Type}``; ``database`` → ``USE``;
  other parameters are settings, applied with ``SET`` on the request's own engine
  handle, except the transport ones ClickHouse itself consumes (``_TRANSPORT``);
- results in the query's trailing ``FORMAT`` (``TabSeparated`` without one), with
  ``X-ClickHouse-Format``, ``-Timezone``, ``-Query-Id`` and ``-Summary`` headers;
  responses are never compressed (ClickHouse does so only on request, and the
  client reads either);
- errors as HTTP 500 with the engine's ``Code: N. DB::Exception: …`` text and
  ``X-ClickHouse-Exception-Code: N``.

Not spoken: multipart/form-encoded queries and external tables, sessions
(``session_id`` is accepted and ignored), progress headers, TLS and users.

chdb hosts one engine per process, for one data directory; each request opens its
own handle to it (cheap once the engine is up), so ``SET``/``USE`` never leak
between requests, and the server keeps one handle open while it runs so the
engine is not torn down between requests.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import socket
import tempfile
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame  # type: ignore[import-untyped]

_TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "enable_http_compression",
        "http_zlib_compression_level",
        "wait_end_of_query",
        "buffer_size",
        "client_protocol_version",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        "role",
    }
)
"""URL parameters the HTTP layer consumes; they never reach the engine as settings."""

_SETTING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INSERT = re.compile(rb"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<fmt>\w+)[ \t]*(?:\r?\n|$)", re.I | re.S)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
_CODE = re.compile(r"Code:\s*(\d+)")
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
}
_MAX_BODY = 256 << 20
_Answer = tuple[bytes, str, dict[str, str]]


class _Refused(Exception):
    """A request the front answers with a ClickHouse-style error."""

    def __init__(self, code: int, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def decode_lz4_frames(data: bytes) -> bytes:
    """Every lz4 frame of ``data``, decompressed and concatenated (clickhouse-connect sends one per block).

    Raises:
        RuntimeError: ``data`` is not a sequence of complete lz4 frames.
    """
    out = bytearray()
    rest = data
    while rest:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out += decompressor.decompress(rest)
        if not decompressor.eof:
            raise RuntimeError("truncated lz4 frame")
        rest = decompressor.unused_data
    return bytes(out)


def _decode_body(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return data
        if encoding == "lz4":
            return decode_lz4_frames(data)
        if encoding == "gzip":
            return gzip.decompress(data)
        if encoding == "deflate":
            return zlib.decompress(data)
        if encoding == "zstd":
            from backports import zstd  # a clickhouse-connect dependency

            return zstd.decompress(data)
    except Exception as exc:
        message = f"Code: 271. DB::Exception: Cannot decompress {encoding} body: {exc}. (CANNOT_DECOMPRESS)"
        raise _Refused(271, message) from None
    raise _Refused(271, f"Code: 271. DB::Exception: Unknown Content-Encoding {encoding!r}. (CANNOT_DECOMPRESS)")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that can also cut its open keep-alive connections."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._open_lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class ChdbHttpServer:
    """The front, on ``host:port`` (port 0: a free one, kept across ``stop``/``start``)."""

    def __init__(self, path: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        # chdb compares engine paths literally; clickhouse-connect resolves them the same way.
        self.path = os.path.realpath(path)
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._anchor: Any = None
        self._version = ""
        self._timezone = "UTC"

    @property
    def url(self) -> str:
        """``http://host:port`` (the port is known once started)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Open the engine (if needed) and serve in a daemon thread."""
        if self._server is not None:
            return
        if self._anchor is None:
            self._anchor = chdb.connect(self.path)
            row = self._anchor.query("SELECT version(), timezone()", "TabSeparated").bytes().decode()
            self._version, self._timezone = row.rstrip("\n").split("\t")
        server = _Server((self.host, self.port), _handler(self))
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="chdb-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and cut open connections (the port is refused until ``start``); the engine stays open."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.cut_connections()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def close(self) -> None:
        """Stop serving and release the engine handle."""
        self.stop()
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None

    def __enter__(self) -> ChdbHttpServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _handle(self) -> Iterator[Any]:
        conn = chdb.connect(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def execute(self, params: dict[str, str], body: bytes) -> tuple[bytes, str, dict[str, str]]:
        """Run one request: ``(response body, format, summary)``.

        Raises:
            _Refused: the engine refused it (the message is ClickHouse's).
        """
        query = params.get("query", "").encode()
        insert = _INSERT.match(query or body)
        if insert is not None:
            data = body if query else body[insert.end() :]
            return self._run(params, lambda conn: self._insert(conn, insert, data))
        sql = (query + b"\n" + body if query and body else query or body).decode("utf-8", "replace")
        if not sql.strip():
            raise _Refused(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)", 400)
        trailing = _TRAILING_FORMAT.search(sql)
        fmt = trailing.group(1) if trailing else params.get("default_format", "TabSeparated")
        bind = {k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")}
        return self._run(params, lambda conn: self._select(conn, sql, fmt, bind))

    def _run(self, params: dict[str, str], action: Callable[[Any], _Answer]) -> _Answer:
        try:
            with self._handle() as conn:
                if params.get("database"):
                    conn.query(f"USE `{params['database'].replace('`', '')}`", "TabSeparated")
                for name, value in params.items():
                    if name in _TRANSPORT or name.startswith("param_"):
                        continue
                    if not _SETTING.match(name):
                        raise _Refused(115, f"Code: 115. DB::Exception: Unknown setting {name!r}. (UNKNOWN_SETTING)")
                    conn.query(f"SET {name} = {_quote(value)}", "TabSeparated")
                return action(conn)
        except RuntimeError as exc:
            message = str(exc)
            code = _CODE.search(message)
            raise _Refused(int(code.group(1)) if code else 1001, message) from None

    @staticmethod
    def _select(conn: Any, sql: str, fmt: str, bind: dict[str, str]) -> _Answer:
        result = conn.query(sql, fmt, params=bind)
        return result.bytes(), fmt, {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read())}

    @staticmethod
    def _insert(conn: Any, insert: re.Match[bytes], data: bytes) -> _Answer:
        target = insert.group("target").decode()
        fmt = insert.group("fmt").decode()
        with tempfile.NamedTemporaryFile(prefix="chdb-http-", suffix=f".{fmt.lower()}") as file:
            file.write(data)
            file.flush()
            result = conn.query(f"INSERT INTO {target} FROM INFILE {_quote(file.name)} FORMAT {fmt}", "TabSeparated")
        return b"", fmt, {"written_rows": str(result.rows_read()), "written_bytes": str(len(data))}


def _handler(front: ChdbHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "chdb-http"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(chunks)
                    chunks += self.rfile.read(size)
                    self.rfile.readline()
                    if len(chunks) > _MAX_BODY:
                        raise _Refused(307, "Code: 307. DB::Exception: Request body too large. (TOO_MANY_BYTES)", 413)
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                raise _Refused(307, "Code: 307. DB::Exception: Request body too large. (TOO_MANY_BYTES)", 413)
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            url = urlsplit(self.path)
            query_id = str(uuid.uuid4())
            try:
                body = _decode_body(self._read_body(), self.headers.get("Content-Encoding", ""))
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                if url.path == "/ping" or (url.path == "/" and self.command == "GET" and "query" not in params):
                    self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                    return
                out, fmt, summary = front.execute(params, body)
            except _Refused as refused:
                text = f"{refused} (version {front._version})\n".encode()
                headers = {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Exception-Code": str(refused.code),
                    "X-ClickHouse-Query-Id": query_id,
                }
                self._send(refused.status, text, headers)
                return
            headers = {
                "Content-Type": _CONTENT_TYPES.get(fmt, "application/octet-stream"),
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Timezone": front._timezone,
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Server-Display-Name": "chdb-http",
                "X-ClickHouse-Summary": json.dumps(summary),
            }
            self._send(200, out, headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


def main(argv: list[str] | None = None) -> None:
    """``python -m botkiln.infra.chdb_http --path DIR [--host H] [--port N]``: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m botkiln.infra.chdb_http", description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="./var/analytics", help="chdb data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args(argv)
    front = ChdbHttpServer(args.path, host=args.host, port=args.port)
    front.start()
    print(f"ClickHouse HTTP front over chdb {front.path} at {front.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        front.close()


if __name__ == "__main__":
    main()
