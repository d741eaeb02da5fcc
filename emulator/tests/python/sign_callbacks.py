"""Callbacks signed by twilio-python 9.13's RequestValidator, for the SDK's front doors.

Prints a JSON array of requests {name, path, headers, body} as Twilio would post them to
PUBLIC + path, one per signing scheme (form fields, JSON fields as parameters, bodySHA256, a
shared key with HMAC-SHA256) and one signed with another token. The SDK's test
(tests/it/webhook_python.rs) posts them to an actix-web door and expects each genuine one to
reach the handler, the forged one to be refused.

Usage: python sign_callbacks.py PUBLIC TOKEN SHARED_KEY_ID SHARED_KEY_SECRET
"""

import json
import sys
import urllib.parse

from twilio.request_validator import RequestValidator


def main():
    public, token, key_id, key_secret = sys.argv[1:5]
    validator = RequestValidator(token)
    url = public + "/hook"
    timestamp = sys.argv[5] if len(sys.argv) > 5 else "Wed, 18 Dec 2019 20:02:01 +0000"

    def fields(n):
        return {
            "ContentType": "application/json",
            "Content": json.dumps({"n": n}),
            "SequenceNumber": str(n),
            "CallSid": "CA" + "b" * 32,
            "Timestamp": timestamp,
            "AccountSid": "AC" + "a" * 32,
            "Sid": "KX%032x" % (0x9000 + n),
        }

    requests = []

    def add(name, path_and_query, headers, body):
        requests.append({"name": name, "path": path_and_query, "headers": headers, "body": body})

    params = fields(1)
    add(
        "form fields",
        "/hook",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, params),
        },
        urllib.parse.urlencode(params),
    )
    params = fields(2)
    add(
        "JSON fields as parameters",
        "/hook",
        {"Content-Type": "application/json", "X-Twilio-Signature": validator.compute_signature(url, params)},
        json.dumps(params),
    )
    body = json.dumps(fields(3))
    hashed = url + "?" + urllib.parse.urlencode({"bodySHA256": validator.compute_hash(body)})
    add(
        "bodySHA256",
        hashed[len(public):],
        {"Content-Type": "application/json", "X-Twilio-Signature": validator.compute_signature(hashed, {})},
        body,
    )
    params = fields(4)
    add(
        "shared key, HMAC-SHA256",
        "/hook",
        {
            "Content-Type": "application/json",
            "X-Twilio-Webhooks-Signature-Settings": "key=%s,algorithm=HMAC_SHA256" % key_id,
            "X-Twilio-Signature": RequestValidator(key_secret).compute_signature(url, params, "HMAC_SHA256"),
        },
        json.dumps(params),
    )
    params = fields(5)
    add(
        "forged: another token",
        "/hook",
        {"Content-Type": "application/json", "X-Twilio-Signature": RequestValidator("not-the-token").compute_signature(url, params)},
        json.dumps(params),
    )
    json.dump(requests, sys.stdout)


if __name__ == "__main__":
    main()
