"""The framework's own floor: an HTTP function that does nothing, served the same way
(functions-framework, firebase-functions' decorator) as functions/main.py."""

from firebase_functions import https_fn


@https_fn.on_request()
def empty(req: https_fn.Request) -> https_fn.Response:
    return https_fn.Response("{}", status=200, mimetype="application/json")
