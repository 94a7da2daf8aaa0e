"""``bridge.yaml`` → validated, typed settings.

Safe defaults live in code; the file and the environment override them; a bad
config stops the program with messages naming the file, line and key path
(``bridge.yaml:14 routes.contact.fields.email.type: must be one of: …``).

``document`` reads the YAML, ``fields``, ``auth``, ``browser``, ``route_schema`` and
``schema`` check it, ``build`` and ``routes`` turn it into the frozen ``settings``, and
``reference`` documents every key from the schemas.
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .build import config_path, load_settings, settings_from_dict, settings_from_text
    from .document import ConfigError, mask_secrets
    from .fields import parse_duration
    from .settings import (
        DEFAULT_MAX_BODY,
        KINDS,
        PATH_PREFIX,
        Captcha,
        ContentRules,
        Retention,
        Route,
        Settings,
    )

__getattr__ = exports(
    __name__,
    {
        "config_path": ".build",
        "load_settings": ".build",
        "settings_from_dict": ".build",
        "settings_from_text": ".build",
        "ConfigError": ".document",
        "mask_secrets": ".document",
        "parse_duration": ".fields",
        "DEFAULT_MAX_BODY": ".settings",
        "KINDS": ".settings",
        "PATH_PREFIX": ".settings",
        "Captcha": ".settings",
        "ContentRules": ".settings",
        "Retention": ".settings",
        "Route": ".settings",
        "Settings": ".settings",
    },
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "KINDS",
    "PATH_PREFIX",
    "Captcha",
    "ConfigError",
    "ContentRules",
    "Retention",
    "Route",
    "Settings",
    "config_path",
    "load_settings",
    "mask_secrets",
    "parse_duration",
    "settings_from_dict",
    "settings_from_text",
]
