"""The emulator's Flask app: the vendor's endpoints and the control endpoints over a state."""

from __future__ import annotations

from flask import Flask, Response

from ...jsonbody import BoundedJSONProvider
from . import api, control
from .rules import Refused
from .state import EmulatorState


def create_emulator(state: EmulatorState) -> Flask:
    """The emulator's Flask app over ``state``."""
    app = Flask("bridge.proprofs.emulator")
    app.config["EMULATOR_STATE"] = state
    app.json = BoundedJSONProvider(app)  # a deep body is a malformed one, not a crash
    app.json.sort_keys = False
    app.register_blueprint(api.blueprint)
    app.register_blueprint(control.blueprint)

    @app.errorhandler(Refused)
    def refused(exc: Refused) -> Response:
        return api.error(exc.description, exc.status)

    @app.errorhandler(api.Abort)
    def aborted(exc: api.Abort) -> Response:
        return exc.response

    return app
