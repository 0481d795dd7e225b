"""Credentials for the schemathesis run of server/tests/api/fuzz.rs.

The test starts the server, signs its admin in and opens enrollment, then
passes what it got in environment variables. Each operation gets the
credentials a real client of it would have, so that a schema-valid request
is refused only for what it says, never for a credential the fuzzer could
not know:

- POST /api/processes/ and POST /api/changes/: an agent key is bound to
  one host, and a snapshot (or change batch) names its host; a single key
  would make every other generated host id a 403. So each is sent with the
  key of the host it names, got the way an agent gets it: POST
  /api/enroll/ with the enrollment secret.
- GET /api/agent/actions/ and POST /api/agent/actions/{id}/result: an
  agent's own, with the key of the seeded host (enrolled as above), whose
  actions the other hooks make.
- DELETE /api/session/: signing out ends the session it is sent with, so
  each call ends a spare session of the admin's, made by the test. (Not
  one signed in for here: the fuzzer's failed sign-ins soon throttle this
  address, as they should.)
- Everything else: the admin's session cookie.

Times are generated within what the document allows: it gives them as
`date-time` with a pattern for the years the store can hold (1678 to
2261); drawn from every year and then filtered, too few pass.

A channel's or a silence's id (DELETE /api/alerts/channels/{id}, its test
button, DELETE /api/alerts/silences/{id}) is never one the fuzzer could
guess: every other call names one made for it. A silence must end after
now and name a rule and host that exist, which a generated one seldom
does: every POST /api/alerts/silences/ ends an hour from now and names the
seeded host if any, and three in four name no rule (the rest stays as
generated).

And two requests are changed: the fuzzer learns the admin's name from
GET /api/users/ and, once it has added another admin, removes this one;
every request after that is a 401, correctly. So DELETE /api/users/{name}
never names the admin whose session the run uses; and DELETE
/api/hosts/{id} never the host whose history the test checks afterwards.

A change batch (POST /api/changes/) applies only to the snapshot it names
as its base, which a generated batch never names: every one would be a
409, and the batch's own contents never checked. So every other batch is
made relative to the latest snapshot of a host the test seeded for it
(BATCH_HOST): its base id, its host, and no pids that host lacks; the rest
(started processes, load, times) stays as generated.

An action names a process by its pid and start time exactly as its
host's newest snapshot has them, which a generated one never does (404 for
the host, 409 for the process): every other POST /api/actions/ is aimed at
a process of the seeded host, keeping the generated kind and reason. And an
action's id is never one the fuzzer could guess: every other GET
/api/actions/{id}, and every other result reported, names an action made
for it (on the seeded host, whose key the agent's calls carry).

What the fuzzer's own admin requests change, the hooks follow, as a real
agent would: a new enrollment secret (POST /api/enroll-secret/) is the one
agents enroll with from then on, and a removed host (DELETE
/api/hosts/{id}) takes its key with it, so its agent enrolls again.
"""

import json
import os
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

BASE = os.environ["PROCMON_URL"]
SESSION = os.environ["PROCMON_SESSION"]
USER = os.environ["PROCMON_USER"]
PASSWORD = os.environ["PROCMON_PASSWORD"]
# The enrollment secret in force: the fuzzer may rotate it.
ENROLL_SECRET = [os.environ["PROCMON_ENROLL_SECRET"]]
SPARE_SESSIONS = os.environ["PROCMON_SPARE_SESSIONS"].split(",")
COOKIE = "procmon_session"
# The host the test seeded, whose history it checks after the run.
SEEDED_HOST = "seeded"
# The host whose latest snapshot is the base of the fuzzer's batches.
BATCH_HOST = "batch-base"

schemathesis.openapi.format(
    "date-time",
    st.builds(
        lambda at, minutes: at.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
        st.datetimes(datetime(1678, 1, 1), datetime(2261, 12, 31, 23, 59, 59)),
        st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    ),
)


def _get(path):
    request = urllib.request.Request(BASE + path, headers={"Cookie": f"{COOKIE}={SESSION}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError:
        return None


def _post(path, body, headers=None):
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, None


AGENT_PATHS = "^/api/(processes|changes)/$"


def _host_id(body):
    """The host a snapshot (`host.id`) or a change batch (`host_id`) names."""
    if not isinstance(body, dict):
        return None
    if "host_id" in body:
        return body["host_id"]
    host = body.get("host")
    return host.get("id") if isinstance(host, dict) else None


@schemathesis.auth(refresh_interval=None).apply_to(method="POST", path_regex=AGENT_PATHS)
class HostKey:
    """The key of the host the snapshot names, enrolled on first use."""

    keys = {}

    @classmethod
    def key_for(cls, host_id):
        if host_id not in cls.keys:
            status, _, answer = _post(
                "/api/enroll/",
                {"enroll_secret": ENROLL_SECRET[0], "host_id": host_id, "hostname": "fuzz"},
            )
            # An id the server refuses to enroll (422) is refused as a
            # snapshot's host too; the snapshot goes without a key.
            cls.keys[host_id] = answer["key"] if status == 201 else None
        return cls.keys[host_id]

    def get(self, case, context):
        host_id = _host_id(case.body)
        if not isinstance(host_id, str):
            # Not a snapshot at all (negative data): no host to hold a key.
            return None
        return self.key_for(host_id)

    def set(self, case, data, context):
        if data is not None:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"


AGENT_ACTION_PATHS = "^/api/agent/actions/"


@schemathesis.auth(refresh_interval=None).apply_to(path_regex=AGENT_ACTION_PATHS)
class SeededAgentKey:
    """The seeded host's key, for its agent's fetches and reports."""

    def get(self, case, context):
        return HostKey.key_for(SEEDED_HOST)

    def set(self, case, data, context):
        if data is not None:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.auth(refresh_interval=None).apply_to(method="DELETE", path="/api/session/")
class SpareSession:
    """A session of its own for each sign-out."""

    def get(self, case, context):
        assert SPARE_SESSIONS, "the test made too few spare sessions for the sign-outs"
        return SPARE_SESSIONS.pop()

    def set(self, case, data, context):
        case.cookies = case.cookies or {}
        case.cookies[COOKIE] = data


@schemathesis.auth(refresh_interval=None).skip_for(method="POST", path_regex=AGENT_PATHS).skip_for(
    method="DELETE", path="/api/session/"
).skip_for(path_regex=AGENT_ACTION_PATHS)
class AdminSession:
    """The admin's session, for every other operation."""

    def get(self, case, context):
        return SESSION

    def set(self, case, data, context):
        case.cookies = case.cookies or {}
        case.cookies[COOKIE] = data


# Calls of DELETE /api/alerts/channels/{id} and of its test button so
# far: every other one is given a real channel's id.
CHANNEL_CALLS = [0]


def _channel():
    """A new channel's id: a webhook to a port where nothing listens, so a
    test of it fails at once."""
    status, _, made = _post(
        "/api/alerts/channels/",
        {"name": "fuzzed", "kind": {"type": "webhook", "url": "http://127.0.0.1:9/"}},
        {"Cookie": f"{COOKIE}={SESSION}", "X-Procmon-Csrf": "1"},
    )
    return made["id"] if status == 201 else None


# Calls of DELETE /api/alerts/silences/{id} so far.
SILENCE_CALLS = [0]


def _silence():
    """A new silence's id, of every alert, for an hour."""
    until = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    status, _, made = _post(
        "/api/alerts/silences/",
        {"until": until, "reason": "fuzzed"},
        {"Cookie": f"{COOKIE}={SESSION}", "X-Procmon-Csrf": "1"},
    )
    return made["id"] if status == 201 else None


# POST /api/alerts/silences/ calls so far.
_silences = [0]


def _valid_silence(body):
    """The generated silence, made one the server can accept: it ends an
    hour from now, after its start (no schema can say "after now"), and
    names a host that exists; only one in four keeps its generated rule id
    (almost never a rule's: 404). A body the generator made invalid on
    purpose (not an object, `until` not a string) is sent as it is."""
    if not isinstance(body, dict) or not isinstance(body.get("until"), str):
        return body
    _silences[0] += 1
    body = dict(body)
    body.pop("starts_at", None)
    body["until"] = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    if "host" in body:
        body["host"] = SEEDED_HOST
    if _silences[0] % 4:
        body.pop("rule_id", None)
    return body


# Calls so far of POST /api/actions/, GET /api/actions/{id} and the
# agent's POST /api/agent/actions/{id}/result.
ACTION_CALLS = {"create": 0, "get": 0, "report": 0}


def _seeded_process():
    """A process of the seeded host's newest snapshot: (pid, start time)."""
    listing = _get(f"/api/processes/?host={SEEDED_HOST}")
    if not listing or not listing["processes"]:
        return None
    process = listing["processes"][0]
    return process["pid"], process["start_time"]


def _action():
    """A new action's id, on a process of the seeded host."""
    process = _seeded_process()
    if process is None:
        return None
    status, _, made = _post(
        "/api/actions/",
        {
            "host_id": SEEDED_HOST,
            "pid": process[0],
            "started_at": process[1],
            "kind": "terminate",
            "reason": "fuzzed",
        },
        {"Cookie": f"{COOKIE}={SESSION}", "X-Procmon-Csrf": "1"},
    )
    return made["id"] if status == 201 else None


def _every_other(name):
    ACTION_CALLS[name] += 1
    return ACTION_CALLS[name] % 2 == 0


def _real_actions(case):
    method = case.method.upper()
    if case.path == "/api/actions/" and method == "POST":
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("reason"), str) and _every_other("create"):
            process = _seeded_process()
            if process is not None:
                case.body = {**body, "host_id": SEEDED_HOST, "pid": process[0], "started_at": process[1]}
    named = {"/api/actions/{id}": "get", "/api/agent/actions/{id}/result": "report"}.get(case.path)
    if named and case.path_parameters is not None and _every_other(named):
        made = _action()
        if made:
            case.path_parameters["id"] = made


@schemathesis.hook
def before_call(context, case, kwargs):
    _real_actions(case)
    # Here, not in a map_body hook: the coverage phase's cases (a silence
    # that ended in 2000, say) do not pass through map_body.
    if case.path == "/api/alerts/silences/" and case.method.upper() == "POST":
        case.body = _valid_silence(case.body)
    if case.path == "/api/changes/" and case.method.upper() == "POST":
        body = against_a_real_base(case.body)
        if body is not case.body:
            # The key was given for the host the generated batch named.
            case.body = body
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {HostKey.key_for(BATCH_HOST)}"
    if case.path == "/api/alerts/silences/{id}" and case.method.upper() == "DELETE":
        SILENCE_CALLS[0] += 1
        if SILENCE_CALLS[0] % 2 == 0 and case.path_parameters is not None:
            made = _silence()
            if made:
                case.path_parameters["id"] = made
    if case.path.startswith("/api/alerts/channels/{id}") and case.method.upper() in ("DELETE", "POST"):
        # A generated id is never a channel's: half the calls name a real
        # one, so that deleting and testing are reached too.
        CHANNEL_CALLS[0] += 1
        if CHANNEL_CALLS[0] % 2 == 0 and case.path_parameters is not None:
            made = _channel()
            if made:
                case.path_parameters["id"] = made
    if case.method.upper() == "DELETE" and case.path_parameters and case.path_parameters.get("name") == USER:
        case.path_parameters["name"] = USER + "-not"
    if case.method.upper() == "DELETE" and case.path.startswith("/api/hosts/") and case.path_parameters:
        # The test checks the seeded host's history is intact after the
        # run: the fuzzer may remove any host but that one.
        if case.path_parameters.get("id") == SEEDED_HOST:
            case.path_parameters["id"] = SEEDED_HOST + "-not"
        if case.path_parameters.get("id") == BATCH_HOST:
            case.path_parameters["id"] = BATCH_HOST + "-not"
        # A removed host's keys are revoked: its agent enrolls again.
        HostKey.keys.pop(case.path_parameters.get("id"), None)


@schemathesis.hook
def after_call(context, case, response):
    if (
        case.method.upper() == "POST"
        and case.path == "/api/enroll-secret/"
        and 200 <= response.status_code < 300
    ):
        ENROLL_SECRET[0] = response.json()["enroll_secret"]


@schemathesis.hook("filter_body").apply_to(method="POST", path="/api/processes/")
def unique_pids(context, body):
    # The document says a snapshot's pids are unique (in words: JSON
    # Schema's uniqueItems compares whole items), and the server refuses
    # a repeated pid with a 422; such snapshots are not generated.
    if not isinstance(body, dict) or not isinstance(body.get("processes"), list):
        return True
    pids = [p.get("pid") for p in body["processes"] if isinstance(p, dict)]
    return len(pids) == len(set(map(repr, pids)))


_batches = [0]


def against_a_real_base(body):
    """Every other batch, made relative to the latest snapshot of
    BATCH_HOST (in before_call, as silences are: the coverage phase's
    batches do not pass through map_body, and all of them refused made a
    warning)."""
    if not isinstance(body, dict):
        return body
    _batches[0] += 1
    if _batches[0] % 2:
        return body
    listing = _get(f"/api/processes/?host={BATCH_HOST}")
    if listing is None:
        return body
    pids = {p["pid"] for p in listing["processes"]}
    body = dict(body)
    body["host_id"] = BATCH_HOST
    body["base_id"] = listing["snapshot_id"]
    if isinstance(body.get("host"), dict):
        body["host"] = {**body["host"], "id": BATCH_HOST}
    body["exited"] = []
    body["changed"] = []
    started, seen = [], set()
    for p in body.get("started") or []:
        pid = p.get("pid") if isinstance(p, dict) else None
        # (A pid of another type is the coverage phase's negative data.)
        in_base = isinstance(pid, int) and pid in pids
        if not in_base and repr(pid) not in seen:
            seen.add(repr(pid))
            started.append(p)
    body["started"] = started
    return body


def _time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@schemathesis.hook("filter_query").apply_to(path_regex="^/api/history/")
def from_not_after_to(context, query):
    # `from` must not be after `to` (now when absent), as the parameters'
    # descriptions say and a 400 enforces; one parameter's schema cannot
    # refer to another's value, so such pairs are not generated.
    if not isinstance(query, dict) or not isinstance(query.get("from"), str):
        return True
    to = query.get("to")
    try:
        end = _time(to) if isinstance(to, str) else datetime.now(timezone.utc)
        return _time(query["from"]) <= end
    except ValueError:
        return True
