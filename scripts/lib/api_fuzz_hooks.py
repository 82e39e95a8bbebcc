"""schemathesis hooks for scripts/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

Two things docs/openapi.yaml states in words because JSON Schema cannot say them, taught
to the generator so that a request it calls valid is one the API must accept:

- a cursor is signed: only a `next_cursor` the API itself returned is one. A well-formed
  `cursor` the API never issued is dropped from a generated request (a malformed one
  stays: it must be a 400); the stateful phase passes real ones along the spec's links,
  and one goes with the conversation and filters it was issued for;
- `after` must be earlier than `before` on `GET /v1/memories`: a generated pair that is
  not is dropped to `before` alone (functions/memory-feed's tests cover that 400).

And the allow-list: failures that are API Gateway's own documented behaviour, not the
functions'. Each allowed failure is appended to $API_FUZZ_ALLOWED_LOG (the script counts
them); every other failure fails the run.
"""

from __future__ import annotations

import os
import re

import schemathesis

CURSOR = re.compile(r"^[A-Za-z0-9_-]{76}$")
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$"
)

# Every next_cursor a response carried, with what it is bound to: the route, the
# conversation id and the filters of the request that got it (README, pagination).
issued: dict[str, tuple[str, str, object, dict]] = {}
FILTERS = ("status", "before", "after")


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (year 0 included)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _instant(raw: object) -> tuple[int, str] | None:
    """An RFC 3339 text as (whole seconds since the epoch, fraction), or None."""
    m = RFC3339.match(raw) if isinstance(raw, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    secs = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
    if m.group(9):
        off = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs -= off if m.group(9) == "+" else -off
    return secs, (m.group(7) or ".").ljust(11, "0")


@schemathesis.hook
def after_call(context, case, response) -> None:
    try:
        body = response.json()
    except Exception:
        return
    if isinstance(body, dict) and isinstance(body.get("next_cursor"), str):
        query = case.query or {}
        issued[body["next_cursor"]] = (
            case.method.upper(),
            case.operation.path,
            (case.path_parameters or {}).get("id"),
            {k: query[k] for k in FILTERS if k in query},
        )


@schemathesis.hook
def map_case(context, case):
    query = dict(case.query or {})
    cursor = query.get("cursor")
    if isinstance(cursor, str) and CURSOR.match(cursor):
        origin = issued.get(cursor)
        if origin is None or origin[:2] != (case.method.upper(), case.operation.path):
            # Never issued for this route: it cannot verify, whatever the schema says.
            del query["cursor"]
        else:
            # A real cursor goes with the conversation and the filters it was issued for.
            _, _, conversation, filters = origin
            for k in FILTERS:
                query.pop(k, None)
            query.update(filters)
            if conversation is not None and case.path_parameters is not None:
                case.path_parameters = {**case.path_parameters, "id": conversation}
    after, before = _instant(query.get("after")), _instant(query.get("before"))
    if after is not None and before is not None and after >= before:
        del query["after"]
    if case.query is not None or query:
        case.query = query
    return case


# API Gateway's own documented behaviour: (failure code, predicate on the request and
# response, the behaviour, the AWS documentation that states it).
ALLOWED = [
    (
        # schemathesis' unsupported_method check wants a 405 for a method the spec does not
        # declare on a path; an HTTP API routes on method and path together, and a request
        # that matches no route is its 404 {"message":"Not Found"} (the local gateway does
        # the same).
        "ST204",
        lambda case, response: response.status_code == 404
        and response.json() == {"message": "Not Found"},
        "HTTP API: a request matching no route (method + path) is 404 {\"message\":\"Not Found\"}",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html",
    ),
    (
        # The same check on `GET /v1/memories/uploads` (only POST is declared there): an
        # HTTP API matches a path variable against any segment, so the request is routed
        # to `GET /v1/memories/{id}` with id "uploads", whose function answers what it
        # answers for any id that is not a UUID, a 400 naming `id` (the spec's getMemory).
        "ST204",
        lambda case, response: response.request.method == "GET"
        and case.path == "/v1/memories/uploads"
        and response.status_code == 400
        and response.json().get("code") == "invalid_request",
        "HTTP API: GET /v1/memories/uploads matches the route GET /v1/memories/{id} (path variables match any segment)",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html",
    ),
]


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    for code, matches, behaviour, doc in ALLOWED:
        try:
            hit = failure.code == code and matches(case, response)
        except Exception:
            hit = False
        if hit:
            path = os.environ.get("API_FUZZ_ALLOWED_LOG")
            if path:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(f"{code} {response.request.method} {case.path}: {behaviour} ({doc})\n")
            return False
    return True
