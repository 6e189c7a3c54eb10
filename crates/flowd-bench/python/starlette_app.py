"""uvicorn + Starlette calling the workflow in-process: what a user would hand-roll."""

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from trivial import workflow

SETTINGS = {}


async def hook(request):
    _request = dict(request.query_params)
    _request.update(request.headers.items())
    try:
        body = await request.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        _request.update(body)
    else:
        _request["body"] = body
    returned = workflow(_request, SETTINGS)
    return Response(returned["body"], status_code=returned["status_code"], headers=returned["headers"])


app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
