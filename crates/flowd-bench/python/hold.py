import json
import time


def workflow(_request, settings):
    returned = {
        "status_code": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"hello": _request.get("name")}),
    }
    # Keeps the execution fork alive so that its memory can be read from /proc.
    time.sleep(float(_request.get("hold", 0)))
    return returned
