
# --- the naive runner's driver, appended to the workflow's code and run with `python -c`.
import json as _json
import sys as _sys

_returned = workflow(_json.loads(_sys.stdin.buffer.read() or b"{}"), {})
_sys.stdout.write(_json.dumps(_returned))
