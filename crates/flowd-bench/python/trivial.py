import json


def workflow(_request, settings):
    return {
        "status_code": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"hello": _request.get("name")}),
    }
