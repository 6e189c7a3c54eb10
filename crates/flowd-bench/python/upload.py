import json


def workflow(_request, settings):
    upload = _request.get("file") or {}
    return {
        "status_code": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"name": _request.get("name"), "bytes": len(upload.get("content", b""))}),
    }
