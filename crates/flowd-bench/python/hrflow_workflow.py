import json

import hrflow

CLIENT_CLASS = hrflow.Hrflow


def workflow(_request, settings):
    return {
        "status_code": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"hello": _request.get("name"), "client": CLIENT_CLASS.__name__}),
    }
