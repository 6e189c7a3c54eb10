// The code a new workflow starts from: working, with the signature its mode calls.

export const CATCH_TEMPLATE = `import json


def workflow(_request, settings):
    """Runs on every call of the hook URL.

    _request: the request's headers, query string and parsed body, merged in one dict.
    settings: this workflow's Environment Properties; changes you make are saved.
    Return {"status_code", "body", "headers"} to choose the HTTP response.
    """
    name = _request.get("name", "world")
    print(f"called for {name}")
    return {
        "status_code": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"hello": name}),
    }
`;

export const PULL_TEMPLATE = `def workflow(settings):
    """Runs on the schedule.

    settings: this workflow's Environment Properties; changes you make are saved,
    so the next run can pick up where this one stopped.
    """
    runs = settings.get("runs", 0) + 1
    settings["runs"] = runs
    print(f"run number {runs}")
`;

export function template(mode) {
  return mode === 'pull' ? PULL_TEMPLATE : CATCH_TEMPLATE;
}

export function signature(mode) {
  return mode === 'pull' ? 'def workflow(settings)' : 'def workflow(_request, settings)';
}
