"""gunicorn + Flask calling the workflow in-process: what a user would hand-roll."""

from flask import Flask, Response, request

from trivial import workflow

SETTINGS = {}
app = Flask(__name__)


@app.post("/hook")
def hook():
    _request = request.args.to_dict()
    _request.update(request.headers.items())
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        _request.update(body)
    else:
        _request["body"] = body
    returned = workflow(_request, SETTINGS)
    return Response(returned["body"], status=returned["status_code"], headers=returned["headers"])
