"""A fake FileMaker Data API server over real HTTPS, for tests and benchmarks of the FileMaker sync.

It follows the documented behaviour that python-fmrest and the sync rely on (see ``docs/crm-sync.md``):

- sessions: ``POST /fmi/data/{v}/databases/{db}/sessions`` with Basic auth returns a token (body and
  ``X-FM-Data-Access-Token`` header); a token dies ``session_ttl`` seconds (15 min) after its last use → HTTP 401
  with code ``952``; ``DELETE .../sessions/{token}`` logs out; bad credentials → ``212``; too many sessions → ``956``;
- the envelope ``{"response": {...}, "messages": [{"code": "0", "message": "OK"}]}`` with **string** codes, ``{}``
  as ``response`` on errors, FileMaker errors as HTTP 500;
- records with ``fieldData``, ``portalData`` (always present), string ``recordId`` / ``modId``; lists with
  ``dataInfo``; ``_offset`` (1-based) / ``_limit`` (default 100) / ``_sort`` paging;
- ``_find`` with OR-ed requests, AND-ed fields, ``omit``, and the operators ``==``, ``=``, ``*``, ``>``, ``>=``,
  ``<``, ``<=``, ``a...b``, bare values meaning "a word starts with" (case-insensitive), typed comparison for
  timestamp (``MM/DD/YYYY HH:MM:SS``) and number fields; no match → ``401``;
- ``101`` record missing (also listing an empty layout, or paging past the end), ``102`` unknown field, ``105``
  unknown layout, ``306`` stale ``modId`` on edit;
- fault injection: HTTP 502, a non-JSON body, tokens expiring mid-sync, slow replies, any FileMaker error code.

The store is in memory and driven from Python (:meth:`FakeFileMaker.create` and friends) or over HTTP. Times come
from ``clock`` (a callable returning a naive local ``datetime``), which tests can control.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FM_TIMESTAMP = "%m/%d/%Y %H:%M:%S"
FM_DATE = "%m/%d/%Y"
MESSAGES = {
    "0": "OK",
    "3": "Command is unavailable",
    "101": "Record is missing",
    "102": "Field is missing",
    "105": "Layout is missing",
    "212": "Invalid user account and/or password; please try again",
    "306": "Record modification ID does not match",
    "401": "No records match the request",
    "500": "Date value does not meet validation entry options",
    "802": "Unable to open file",
    "952": "Invalid FileMaker Data API token (*)",
    "953": "Data API transfer limit exceeded",
    "956": "Maximum number of Data API sessions exceeded",
    "960": "Parameter is invalid",
}


class FileMakerFault(Exception):
    def __init__(self, code: str, http_status: int = 500):
        super().__init__(code)
        self.code = code
        self.http_status = http_status


def format_timestamp(moment: datetime) -> str:
    return moment.strftime(FM_TIMESTAMP)


@functools.lru_cache(maxsize=1 << 17)
def parse_timestamp(value: str) -> datetime | None:
    """A FileMaker timestamp, date+minutes or date (memoised: a find compares every record's stamp)."""
    value = value.strip()
    for fmt in (FM_TIMESTAMP, "%m/%d/%Y %H:%M", FM_DATE):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


@dataclass
class StoredRecord:
    record_id: int
    field_data: dict[str, Any]
    portal_data: dict[str, list[dict[str, Any]]]
    mod_id: int = 0


@dataclass
class Layout:
    name: str
    table: str
    fields: list[str]
    timestamp_fields: set[str] = field(default_factory=set)
    number_fields: set[str] = field(default_factory=set)
    # Auto-entered modification timestamp (as a FileMaker field option would do); None = none.
    mod_field: str | None = None
    portals: dict[str, list[str]] = field(default_factory=dict)
    records: dict[int, StoredRecord] = field(default_factory=dict)
    next_id: int = 1
    next_portal_row_id: int = 1
    version: int = 0
    _sort_cache: dict = field(default_factory=dict)


@dataclass
class Fault:
    kind: str  # "502", "garbage", "slow", "expire", or a FileMaker code such as "953"
    remaining: int = 1
    after: int = 0  # let this many matching requests through first
    seconds: float = 0.0
    paths: str | None = None  # only requests whose path contains this


class FakeFileMaker:
    """The store, the sessions and the fault plan; :meth:`start` serves them over HTTPS on 127.0.0.1."""

    def __init__(
        self,
        database: str = "A6Telecom",
        user: str = "comptoir",
        password: str = "secret-fm",
        clock: Callable[[], datetime] | None = None,
        session_ttl: float = 15 * 60,
        max_sessions: int = 100,
    ):
        self.database = database
        self.user = user
        self.password = password
        self.clock = clock or (lambda: datetime.now().replace(microsecond=0))
        self.session_ttl = session_ttl
        self.max_sessions = max_sessions
        self.layouts: dict[str, Layout] = {}
        self.sessions: dict[str, float] = {}  # token → last use (monotonic)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.logins = 0
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.ca_path: str | None = None

    # ------------------------------------------------------------------ store, driven from Python

    def add_layout(
        self,
        name: str,
        fields: list[str],
        *,
        table: str | None = None,
        timestamp_fields: set[str] | None = None,
        number_fields: set[str] | None = None,
        mod_field: str | None = None,
        portals: dict[str, list[str]] | None = None,
    ) -> Layout:
        layout = Layout(
            name=name,
            table=table or name,
            fields=list(fields),
            timestamp_fields=set(timestamp_fields or ()),
            number_fields=set(number_fields or ()),
            mod_field=mod_field,
            portals=dict(portals or {}),
        )
        with self.lock:
            self.layouts[name] = layout
        return layout

    def _layout(self, name: str) -> Layout:
        layout = self.layouts.get(name)
        if layout is None:
            raise FileMakerFault("105")
        return layout

    def _check_fields(self, layout: Layout, names) -> None:
        for name in names:
            if name not in layout.fields:
                raise FileMakerFault("102")

    def _stamp(self, layout: Layout, record: StoredRecord) -> None:
        if layout.mod_field:
            record.field_data[layout.mod_field] = format_timestamp(self.clock())
        layout.version += 1
        layout._sort_cache.clear()

    def _portal_rows(self, layout: Layout, portals: dict[str, list[dict[str, Any]]] | None) -> dict:
        result: dict[str, list[dict[str, Any]]] = {name: [] for name in layout.portals}
        for name, rows in (portals or {}).items():
            if name not in layout.portals:
                raise FileMakerFault("102")
            for row in rows:
                row_id = row.get("recordId") or str(layout.next_portal_row_id)
                layout.next_portal_row_id += 1
                clean = {"recordId": str(row_id), "modId": str(row.get("modId", "0"))}
                for key, value in row.items():
                    if key in ("recordId", "modId"):
                        continue
                    qualified = key if "::" in key else f"{name}::{key}"
                    if qualified.split("::", 1)[1] not in layout.portals[name]:
                        raise FileMakerFault("102")
                    clean[qualified] = value
                result[name].append(clean)
        return result

    def create(self, layout_name: str, field_data: dict[str, Any], portals: dict | None = None) -> int:
        with self.lock:
            layout = self._layout(layout_name)
            self._check_fields(layout, field_data)
            record = StoredRecord(
                record_id=layout.next_id,
                field_data={name: "" for name in layout.fields} | dict(field_data),
                portal_data=self._portal_rows(layout, portals),
            )
            layout.next_id += 1
            layout.records[record.record_id] = record
            self._stamp(layout, record)
            return record.record_id

    def update(
        self,
        layout_name: str,
        record_id: int,
        field_data: dict[str, Any] | None = None,
        portals: dict | None = None,
        mod_id: int | None = None,
    ) -> int:
        """Edit a record (portals, when given, are replaced); returns the new modId."""
        with self.lock:
            layout = self._layout(layout_name)
            record = layout.records.get(int(record_id))
            if record is None:
                raise FileMakerFault("101")
            if mod_id is not None and int(mod_id) != record.mod_id:
                raise FileMakerFault("306")
            self._check_fields(layout, field_data or {})
            record.field_data.update(field_data or {})
            if portals is not None:
                record.portal_data = self._portal_rows(layout, portals)
            record.mod_id += 1
            self._stamp(layout, record)
            return record.mod_id

    def delete(self, layout_name: str, record_id: int) -> None:
        with self.lock:
            layout = self._layout(layout_name)
            if layout.records.pop(int(record_id), None) is None:
                raise FileMakerFault("101")
            layout.version += 1
            layout._sort_cache.clear()

    def find_record_id(self, layout_name: str, field_name: str, value: Any) -> int | None:
        with self.lock:
            for record in self._layout(layout_name).records.values():
                if record.field_data.get(field_name) == value:
                    return record.record_id
        return None

    # ------------------------------------------------------------------ faults and sessions

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        after: int = 0,
        seconds: float = 0.0,
        paths: str | None = "/layouts/",
    ) -> Fault:
        """Make the next ``count`` requests (whose path contains ``paths``; data requests by default), after
        ``after`` of them went through, fail with ``kind``: ``502``, ``garbage`` (a non-JSON body), ``slow`` (wait
        ``seconds`` then answer normally), ``expire`` (every token dies just before) or a FileMaker code."""
        fault = Fault(kind=kind, remaining=count, after=after, seconds=seconds, paths=paths)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def _next_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining <= 0 or (fault.paths and fault.paths not in path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.remaining -= 1
                return fault
        return None

    def _login(self, authorization: str) -> str:
        if not authorization.startswith("Basic "):
            raise FileMakerFault("212", 401)
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise FileMakerFault("212", 401) from None
        if user != self.user or password != self.password:
            raise FileMakerFault("212", 401)
        with self.lock:
            self._purge_sessions()
            if len(self.sessions) >= self.max_sessions:
                raise FileMakerFault("956", 500)
            token = secrets.token_hex(20)
            self.sessions[token] = time.monotonic()
            self.logins += 1
        return token

    def _purge_sessions(self) -> None:
        now = time.monotonic()
        for token, last_use in list(self.sessions.items()):
            if now - last_use > self.session_ttl:
                del self.sessions[token]

    def _authorise(self, authorization: str) -> None:
        token = authorization[7:].strip() if authorization.startswith("Bearer ") else ""
        with self.lock:
            self._purge_sessions()
            if token not in self.sessions:
                raise FileMakerFault("952", 401)
            self.sessions[token] = time.monotonic()

    # ------------------------------------------------------------------ records as the API shows them

    def _record_json(self, layout: Layout, record: StoredRecord) -> dict[str, Any]:
        return {
            "fieldData": dict(record.field_data),
            "portalData": {name: [dict(row) for row in rows] for name, rows in record.portal_data.items()},
            "recordId": str(record.record_id),
            "modId": str(record.mod_id),
            "portalDataInfo": [
                {
                    "portalObjectName": name,
                    "database": self.database,
                    "table": name,
                    "foundCount": len(rows),
                    "returnedCount": len(rows),
                }
                for name, rows in record.portal_data.items()
            ],
        }

    def _typed(self, layout: Layout, field_name: str, value: Any):
        if field_name in layout.timestamp_fields:
            return parse_timestamp(str(value)) if value not in (None, "") else None
        if field_name in layout.number_fields:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
        return str(value if value is not None else "").casefold()

    def _sorted(self, layout: Layout, sort: list[dict[str, str]] | None) -> list[StoredRecord]:
        spec = tuple((s.get("fieldName"), s.get("sortOrder", "ascend")) for s in sort or [])
        cached = layout._sort_cache.get(spec)
        if cached is not None:
            return cached
        self._check_fields(layout, [name for name, _ in spec])
        records = sorted(layout.records.values(), key=lambda r: r.record_id)
        for name, order in reversed(spec):
            if order not in ("ascend", "descend"):
                raise FileMakerFault("960")

            def key(record: StoredRecord, name=name):
                value = self._typed(layout, name, record.field_data.get(name))
                # Empty values first when ascending, as FileMaker does.
                return (value is not None and value != "", value if value is not None else "")

            records.sort(key=key, reverse=order == "descend")
        layout._sort_cache[spec] = records
        return records

    def _matches(self, layout: Layout, record: StoredRecord, request: dict[str, Any]) -> bool:
        for name, criterion in request.items():
            if name == "omit":
                continue
            if not self._criterion_matches(layout, name, record.field_data.get(name), str(criterion)):
                return False
        return True

    def _criterion_matches(self, layout: Layout, name: str, raw: Any, criterion: str) -> bool:
        criterion = criterion.strip()
        text = "" if raw is None else str(raw)
        if criterion == "":
            return True
        if criterion == "=":
            return text == ""
        if criterion == "*":
            return text != ""
        typed_field = name in layout.timestamp_fields or name in layout.number_fields
        value = self._typed(layout, name, raw)
        if "..." in criterion:
            low, high = (self._typed(layout, name, part) for part in criterion.split("...", 1))
            return value is not None and low is not None and high is not None and low <= value <= high
        for op in (">=", "<=", ">", "<"):
            if criterion.startswith(op):
                bound = self._typed(layout, name, criterion[len(op) :])
                if value is None or value == "" or bound is None:
                    return False
                return {
                    ">=": value >= bound,
                    "<=": value <= bound,
                    ">": value > bound,
                    "<": value < bound,
                }[op]
        if criterion.startswith("=="):
            wanted = criterion[2:]
            if typed_field:
                return value is not None and value == self._typed(layout, name, wanted)
            pattern = "^" + ".*".join(re.escape(p) for p in wanted.split("*")) + "$"
            return re.match(pattern, text, re.IGNORECASE | re.DOTALL) is not None
        words = re.findall(r"\w[\w'@.-]*", text.casefold())
        if criterion.startswith("="):
            wanted = criterion[1:].casefold()
            return wanted in words or text.casefold() == wanted
        if name in layout.timestamp_fields:
            bound = parse_timestamp(criterion)
            if bound is None or value is None:
                return False
            if len(criterion.strip()) <= 10:  # a date: the whole day
                return value.date() == bound.date()
            return value == bound
        if name in layout.number_fields:
            return value is not None and value == self._typed(layout, name, criterion)
        for part in criterion.casefold().split():
            pattern = "^" + ".*".join(re.escape(p) for p in part.split("*"))
            if not any(re.match(pattern, word) for word in words):
                return False
        return True

    def _page(self, layout: Layout, records: list[StoredRecord], offset: int, limit: int, total: int) -> dict:
        if offset < 1 or limit < 1:
            raise FileMakerFault("960")
        if records and offset > len(records):
            raise FileMakerFault("101")
        page = records[offset - 1 : offset - 1 + limit]
        return {
            "dataInfo": {
                "database": self.database,
                "layout": layout.name,
                "table": layout.table,
                "totalRecordCount": total,
                "foundCount": len(records),
                "returnedCount": len(page),
            },
            "data": [self._record_json(layout, record) for record in page],
        }

    # ------------------------------------------------------------------ HTTP routing

    def handle(self, method: str, path: str, query: dict[str, str], headers, body: bytes) -> tuple[int, dict]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 4 or parts[:2] != ["fmi", "data"] or parts[2] not in ("v1", "v2", "vLatest"):
            raise FileMakerFault("3", 404)
        rest = parts[3:]
        if rest[0] != "databases" or len(rest) < 3:
            raise FileMakerFault("3", 404)
        if rest[1] != self.database:
            raise FileMakerFault("802")
        authorization = headers.get("Authorization", "")
        if rest[2] == "sessions":
            if method == "POST" and len(rest) == 3:
                token = self._login(authorization)
                return 200, {"token": token}
            if method == "DELETE" and len(rest) == 4:
                with self.lock:
                    if self.sessions.pop(rest[3], None) is None:
                        raise FileMakerFault("952", 401)
                return 200, {}
            raise FileMakerFault("3", 405)
        if rest[2] != "layouts" or len(rest) < 5:
            raise FileMakerFault("3", 404)
        self._authorise(authorization)
        payload = json.loads(body or b"{}") if body else {}
        with self.lock:
            layout = self._layout(rest[3])
            if rest[4] == "_find" and method == "POST":
                return 200, self._find(layout, payload)
            if rest[4] != "records":
                raise FileMakerFault("3", 404)
            if len(rest) == 5 and method == "GET":
                offset = int(query.get("_offset", "1"))
                limit = int(query.get("_limit", "100"))
                sort = json.loads(query["_sort"]) if query.get("_sort") else None
                records = self._sorted(layout, sort)
                if not records:
                    raise FileMakerFault("101")
                return 200, self._page(layout, records, offset, limit, len(layout.records))
            if len(rest) == 5 and method == "POST":
                record_id = self.create(
                    layout.name, payload.get("fieldData") or {}, payload.get("portalData")
                )
                return 200, {"recordId": str(record_id), "modId": "0"}
            if len(rest) == 6:
                record_id = int(rest[5]) if rest[5].isdigit() else -1
                record = layout.records.get(record_id)
                if record is None:
                    raise FileMakerFault("101")
                if method == "GET":
                    return 200, self._page(layout, [record], 1, 1, len(layout.records))
                if method == "PATCH":
                    mod_id = self.update(
                        layout.name,
                        record_id,
                        payload.get("fieldData") or {},
                        payload.get("portalData"),
                        mod_id=int(payload["modId"]) if payload.get("modId") not in (None, "") else None,
                    )
                    return 200, {"modId": str(mod_id)}
                if method == "DELETE":
                    self.delete(layout.name, record_id)
                    return 200, {}
        raise FileMakerFault("3", 405)

    def _find(self, layout: Layout, payload: dict[str, Any]) -> dict:
        requests_ = payload.get("query")
        if not isinstance(requests_, list) or not requests_:
            raise FileMakerFault("960")
        for request in requests_:
            self._check_fields(layout, [name for name in request if name != "omit"])
        finds = [r for r in requests_ if str(r.get("omit", "false")).lower() != "true"]
        omits = [r for r in requests_ if str(r.get("omit", "false")).lower() == "true"]
        found = [
            record
            for record in self._sorted(layout, payload.get("sort"))
            if (not finds or any(self._matches(layout, record, r) for r in finds))
            and not any(self._matches(layout, record, r) for r in omits)
        ]
        if not found:
            raise FileMakerFault("401")
        offset = int(payload.get("offset", "1"))
        limit = int(payload.get("limit", "100"))
        return self._page(layout, found, offset, limit, len(layout.records))

    # ------------------------------------------------------------------ serving

    def start(self) -> FakeFileMaker:
        """Serve over HTTPS on 127.0.0.1 (any free port) with a throwaway CA: pass :attr:`ca_path` as
        python-fmrest's ``verify_ssl``. (fmrest refuses plain http unless the URL ends in ``:3000``, a port that
        several test runs on one machine would fight over.)"""
        import trustme

        self._tmp = tempfile.TemporaryDirectory(prefix="fakefm-")
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca_path = Path(self._tmp.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        self.ca_path = str(ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                with fake.lock:
                    fake.requests.append((self.command, split.path))
                fault = fake._next_fault(split.path)
                if fault is not None:
                    if fault.kind == "slow":
                        time.sleep(fault.seconds)
                    elif fault.kind == "expire":
                        fake.expire_sessions()
                    elif fault.kind == "502":
                        return self._send(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
                    elif fault.kind == "garbage":
                        return self._send(200, b"<html>Service Unavailable</html>\x00", "text/html")
                    else:
                        return self._envelope(500, {}, fault.kind)
                try:
                    status, response = fake.handle(self.command, split.path, query, self.headers, body)
                except FileMakerFault as exc:
                    return self._envelope(exc.http_status, {}, exc.code)
                except (ValueError, KeyError, TypeError, json.JSONDecodeError):
                    return self._envelope(500, {}, "960")
                extra = {"X-FM-Data-Access-Token": response["token"]} if "token" in response else {}
                return self._envelope(status, response, "0", extra)

            def _envelope(self, status: int, response: dict, code: str, headers: dict | None = None):
                body = json.dumps(
                    {
                        "response": response,
                        "messages": [{"code": code, "message": MESSAGES.get(code, "Error")}],
                    }
                ).encode()
                self._send(status, body, "application/json", headers)

            def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, address = super().get_request()
                # The handshake happens in the request's thread (first read), not in the accept loop.
                return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

            def handle_error(self, request, client_address):  # a client hanging up mid-handshake is no news
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-filemaker", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class SteppingClock:
    """A FileMaker server clock that tests move by hand (FileMaker timestamps have one-second resolution)."""

    def __init__(self, start: datetime | None = None):
        self.now = (start or datetime(2026, 11, 28, 8, 0, 0)).replace(microsecond=0)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.now

    def advance(self, seconds: float = 1) -> datetime:
        with self.lock:
            self.now += timedelta(seconds=seconds)
            return self.now


# The layout that crm_sync's default mapping expects (see comptoir_crm_sync.settings.FileMakerMapping).
CLIENT_FIELDS = [
    "ID_Client",
    "DateModification",
    "RaisonSociale",
    "NumeroCompte",
    "Adresse1",
    "Adresse2",
    "CodePostal",
    "Ville",
    "Pays",
    "Telephone",
    "Email",
    "Commercial",
    "ID_Revendeur",
    "Secteur",
    "Notes",
]
CONTACT_FIELDS = ["ID_Contact", "Nom", "Prenom", "Email", "Email2", "Telephone", "Fonction"]


def add_clients_layout(fake: FakeFileMaker, name: str = "Clients") -> Layout:
    return fake.add_layout(
        name,
        CLIENT_FIELDS,
        table="CLIENTS",
        timestamp_fields={"DateModification"},
        mod_field="DateModification",
        portals={"Contacts": CONTACT_FIELDS},
    )
