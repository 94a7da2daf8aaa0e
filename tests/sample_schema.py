"""A user's own marshmallow schema, for the ``schema: module:Class`` route option."""

from typing import Any

from marshmallow import Schema, fields, post_load


class ContactSchema(Schema):
    email = fields.Email(required=True)
    message = fields.String(required=True)

    @post_load
    def shout(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "message": data["message"].upper()}


class NotASchema:
    pass
