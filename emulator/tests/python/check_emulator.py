"""twilio-python 9.13 against the emulator's binary.

An official Twilio library talks to the emulator as it would to api.twilio.com (its
`client.api.base_url` pointed at the binary: twilio-python's `Domain.absolute_url` joins that
base with the resource's path) and its `RequestValidator` checks every callback the emulator
delivers, in each signing scheme: subscribe, send, an idempotent repeat, errors with Twilio's
codes, a throttled request never processed, every callback accepted; and it reads the Call
resource (fetch, list by parent) and a conference's participants over more than one page.

Usage: python check_emulator.py path/to/twilio-call-messages-emulator
Exit 0 when every check passed; 1 otherwise (each failure printed).
"""

import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

ACCOUNT = "AC" + "c" * 32
TOKEN = "python-check-token"
SHARED_KEY_ID = "webhooks_sharedkey_python"
SHARED_KEY_SECRET = "python-shared-secret"

FAILURES = []
PASSED = []


def check(what, condition, detail=""):
    if condition:
        PASSED.append(what)
        print("ok   " + what)
    else:
        FAILURES.append(what)
        print("FAIL " + what + (": " + str(detail) if detail else ""))


class Emulator:
    """The binary on a free port (--port 0), stopped with SIGTERM."""

    def __init__(self, binary, *flags):
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--account-sid", ACCOUNT, "--auth-token", TOKEN, *flags],
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self.process.stdout.readline().strip()
        prefix = "twilio-call-messages-emulator listening on "
        if not first.startswith(prefix):
            raise RuntimeError("unexpected first line: %r" % first)
        self.base = first[len(prefix):]
        # The rest of the banner.
        while not self.process.stdout.readline().startswith("Stop with"):
            pass

    def control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request) as response:
            return json.loads(response.read() or b"null")

    def client(self):
        client = Client(ACCOUNT, TOKEN)
        client.api.base_url = self.base
        return client

    def wait_delivered(self, call_sid, timeout=10.0):
        started = time.time()
        while time.time() - started < timeout:
            stats = self.control("GET", "/emulator/stats")
            if stats["pending_deliveries"] == 0:
                return self.control("GET", "/emulator/calls/%s/client-messages" % call_sid)
            time.sleep(0.02)
        raise RuntimeError("deliveries did not settle")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        rest = self.process.stdout.read()
        code = self.process.wait(timeout=10)
        return code, rest


class Receiver:
    """A service endpoint that checks each callback with twilio-python's RequestValidator."""

    def __init__(self, mode):
        self.mode = mode
        self.results = []
        self.forged = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                url = "http://%s:%d%s" % (self.server.server_address[0], self.server.server_address[1], self.path)
                valid = receiver.validate(url, self.headers, body)
                # The same check with another secret must fail, or the check proves nothing.
                receiver.forged.append(receiver.validate(url, self.headers, body, forged=True))
                receiver.results.append((valid, self.headers.get("content-type"), body))
                self.send_response(200 if valid else 403)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/callbacks" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def validate(self, url, headers, body, forged=False):
        signature = headers.get("X-Twilio-Signature", "")
        if self.mode == "shared-key":
            algorithm = get_signature_algorithm(headers.get("X-Twilio-Webhooks-Signature-Settings"))
            params = json.loads(body)
            secret = "not-the-secret" if forged else SHARED_KEY_SECRET
            return RequestValidator(secret).validate(url, params, signature, algorithm)
        validator = RequestValidator("not-the-token" if forged else TOKEN)
        if self.mode == "body-sha256":
            # The URL carries bodySHA256; the raw body is checked against it.
            return validator.validate(url, body, signature)
        if headers.get("content-type", "").startswith("application/json"):
            # A flat JSON object of strings is signed like a form: what twilio-node's
            # validateExpressRequest checks in Twilio's own Voice SDK tests.
            params = json.loads(body)
        else:
            params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        return validator.validate(url, params, signature)

    def stop(self):
        self.server.shutdown()


def rest_checks(binary):
    emulator = Emulator(binary)
    try:
        call = emulator.control("POST", "/emulator/calls")
        call_sid = call["sid"]
        check("control API: POST /emulator/calls answers an in-progress call", call["status"] == "in-progress", call)
        client = emulator.client()
        calls = client.api.v2010.accounts(ACCOUNT).calls(call_sid)

        message = calls.user_defined_messages.create(content=json.dumps({"hint": "upgrade"}), idempotency_key="py-key-1")
        check("create a message: KX sid", message.sid.startswith("KX") and message.call_sid == call_sid, message.sid)
        check("create a message: RFC 2822 date parsed by twilio-python", message.date_created is not None, message.date_created)
        again = calls.user_defined_messages.create(content=json.dumps({"hint": "upgrade"}), idempotency_key="py-key-1")
        check("an idempotent repeat returns the first message", again.sid == message.sid, (again.sid, message.sid))
        received = emulator.control("GET", "/emulator/calls/%s/messages" % call_sid)
        check(
            "the call's client received it once, in order, with its key",
            len(received) == 1 and received[0]["content"] == {"hint": "upgrade"} and received[0]["idempotency_key"] == "py-key-1",
            received,
        )

        subscription = calls.user_defined_message_subscriptions.create(callback="https://example.com/hook", method="POST")
        check(
            "subscribe: ZY sid and uri",
            subscription.sid.startswith("ZY") and subscription.uri.endswith("/UserDefinedMessageSubscriptions/%s.json" % subscription.sid),
            subscription.uri,
        )
        check("unsubscribe", calls.user_defined_message_subscriptions(subscription.sid).delete() is True)

        def code_of(action):
            try:
                action()
            except TwilioRestException as e:
                return (e.status, e.code)
            return None

        check("unsubscribe twice: 404 / 20404", code_of(lambda: calls.user_defined_message_subscriptions(subscription.sid).delete()) == (404, 20404))
        check("content that is not JSON: 400 / 32702", code_of(lambda: calls.user_defined_messages.create(content="not json")) == (400, 32702))
        check("content over 10,000 characters: 400 / 32703", code_of(lambda: calls.user_defined_messages.create(content=json.dumps("x" * 10000))) == (400, 32703))
        check("a bad Callback host: 400 / 21502", code_of(lambda: calls.user_defined_message_subscriptions.create(callback="https://bad_host.example.com/x")) == (400, 21502))
        unknown = client.api.v2010.accounts(ACCOUNT).calls("CA" + "0" * 32)
        check("an unknown call: 404 / 20404", code_of(lambda: unknown.user_defined_messages.create(content="{}")) == (404, 20404))
        wrong = Client(ACCOUNT, "wrong-token")
        wrong.api.base_url = emulator.base
        check(
            "bad credentials: 401 / 20003",
            code_of(lambda: wrong.api.v2010.accounts(ACCOUNT).calls(call_sid).user_defined_messages.create(content="{}")) == (401, 20003),
        )
        emulator.control("POST", "/emulator/calls/%s" % call_sid, {"status": "completed"})
        check("a completed call: 400 / 21220", code_of(lambda: calls.user_defined_messages.create(content="{}")) == (400, 21220))

        # The account's concurrency limit: one in flight, each 600 ms; a second request
        # while the first is served is throttled and never processed.
        emulator.control("POST", "/emulator/calls/%s" % call_sid, {"status": "in-progress"})
        emulator.control("POST", "/emulator/limits", {"concurrency_limit": 1, "latency_ms": 600})
        outcomes = {}

        def send(key):
            try:
                calls.user_defined_messages.create(content=json.dumps({"key": key}), idempotency_key=key)
                outcomes[key] = 201
            except TwilioRestException as e:
                outcomes[key] = (e.status, e.code)

        first = threading.Thread(target=send, args=("py-slow",))
        first.start()
        time.sleep(0.2)
        send("py-throttled")
        first.join()
        emulator.control("POST", "/emulator/limits", {"concurrency_limit": None, "latency_ms": 0})
        check("beyond the limit: 429 / 20429", outcomes.get("py-throttled") == (429, 20429), outcomes)
        check("within the limit: 201", outcomes.get("py-slow") == 201, outcomes)
        keys = [m["idempotency_key"] for m in emulator.control("GET", "/emulator/calls/%s/messages" % call_sid)]
        check("the throttled request was never processed", "py-throttled" not in keys and "py-slow" in keys, keys)
        stats = emulator.control("GET", "/emulator/stats")
        check("the emulator counted one throttled request", stats["stats"]["throttled"] == 1, stats["stats"])
    finally:
        code, rest = emulator.stop()
        check("SIGTERM stops the binary cleanly", code == 0 and "stopped" in rest, (code, rest))


def read_checks(binary):
    emulator = Emulator(binary)
    try:
        client = emulator.client()
        account = client.api.v2010.accounts(ACCOUNT)
        dialled = emulator.control("POST", "/emulator/calls", {"from": "+15005550006", "to": "client:alice"})
        parent, child = dialled["parent"], dialled["child"]
        call = account.calls(child).fetch()
        check(
            "calls(sid).fetch(): the client that accepted is the to of the outbound-dial child",
            call.sid == child and call.to == "client:alice" and call.direction == "outbound-dial" and call.parent_call_sid == parent,
            (call.sid, call.to, call.direction, call.parent_call_sid),
        )
        check("calls(sid).fetch(): RFC 2822 date parsed by twilio-python", call.date_created is not None, call.date_created)
        children = account.calls.list(parent_call_sid=parent)
        check("calls.list(parent_call_sid=...): the one child leg", [c.sid for c in children] == [child], [c.sid for c in children])
        placed = emulator.control("POST", "/emulator/calls", {"from": "client:bob", "to": "+15005550009"})
        mine = account.calls(placed["parent"]).fetch()
        check("the client that placed the call is the from of the inbound parent", mine._from == "client:bob" and mine.direction == "inbound", (mine._from, mine.direction))

        conference = emulator.control("POST", "/emulator/conferences", {"friendly_name": "python"})
        sid = conference["sid"]
        legs = []
        for to in ["client:carol", "+15005550009", "client:dave"]:
            legs.append(emulator.control("POST", "/emulator/conferences/%s/participants" % sid, {"to": to})["call_sid"])
        participants = account.conferences(sid).participants.list(page_size=2)
        check(
            "conferences(sid).participants.list(): every participant over two pages, in order",
            [p.call_sid for p in participants] == legs,
            [p.call_sid for p in participants],
        )
        first = account.conferences(sid).participants.page(page_size=2)
        check("the first page has a next page", first.next_page_url is not None and len(list(first)) == 2, first.next_page_url)
        fetched = account.conferences(sid).fetch()
        check("conferences(sid).fetch(): in-progress", fetched.status == "in-progress" and fetched.friendly_name == "python", fetched.status)
        one = account.conferences(sid).participants(legs[0]).fetch()
        check("participants(call_sid).fetch(): its own leg", one.call_sid == legs[0] and one.conference_sid == sid, one.call_sid)
    finally:
        emulator.stop()


def callback_checks(binary, mode, flags):
    emulator = Emulator(binary, *flags)
    receiver = Receiver(mode)
    try:
        call_sid = emulator.control("POST", "/emulator/calls")["sid"]
        client = emulator.client()
        calls = client.api.v2010.accounts(ACCOUNT).calls(call_sid)
        calls.user_defined_message_subscriptions.create(callback=receiver.url)
        calls.user_defined_message_subscriptions.create(callback=receiver.url + "?second=1#rc=0")
        for n in range(3):
            emulator.control("POST", "/emulator/calls/%s/client-messages" % call_sid, {"content": {"clicked": n}})
        sent = emulator.wait_delivered(call_sid)
        delivered = all(d["delivered"] for m in sent for d in m["deliveries"])
        check("%s: every callback accepted by RequestValidator" % mode, len(receiver.results) == 6 and all(v for v, _, _ in receiver.results), receiver.results)
        check("%s: every delivery recorded as delivered" % mode, delivered, sent)
        check("%s: another secret validates none of them" % mode, len(receiver.forged) == 6 and not any(receiver.forged), receiver.forged)
        if mode in ("json", "shared-key"):
            bodies = [json.loads(b) for _, _, b in receiver.results]
            check(
                "%s: every field a string, SequenceNumber from 1" % mode,
                all(all(isinstance(v, str) for v in b.values()) for b in bodies)
                and sorted({b["SequenceNumber"] for b in bodies}) == ["1", "2", "3"],
                bodies,
            )
    finally:
        receiver.stop()
        emulator.stop()


def main():
    binary = sys.argv[1]
    rest_checks(binary)
    read_checks(binary)
    callback_checks(binary, "json", [])
    callback_checks(binary, "form", ["--callback-body", "form"])
    callback_checks(binary, "body-sha256", ["--signing", "body-sha256"])
    callback_checks(
        binary,
        "shared-key",
        ["--signing", "shared-key", "--shared-key-id", SHARED_KEY_ID, "--shared-key-secret", SHARED_KEY_SECRET],
    )
    print("\n%d checks passed, %d failed" % (len(PASSED), len(FAILURES)))
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
