"""The baseline for intake benchmarks: a bare Flask app that reads a form and answers 202."""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask("bare")


@app.post("/forms/<name>")
def form(name: str) -> tuple[object, int]:
    fields = request.form.to_dict() or request.get_json(silent=True) or {}
    return jsonify({"status": "accepted", "id": f"{name}-{len(fields)}"}), 202


@app.post("/hooks/<name>")
def hook(name: str) -> tuple[object, int]:
    body = request.get_json(silent=True) or {}
    return jsonify({"status": "accepted", "id": f"{name}-{len(body)}"}), 202


@app.get("/healthz")
def healthz() -> tuple[object, int]:
    return jsonify({"status": "ok"}), 200


@app.get("/widget/<name>/status/<receipt>")
def status(name: str, receipt: str) -> tuple[object, int]:
    return jsonify(
        {
            "state": "delivered",
            "ticket_id": "00700",
            "ticket_status": "open",
            "messages": [{"from": "you", "text": receipt[:8]}],
        }
    ), 200
