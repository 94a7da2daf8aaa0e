"""Imports every sender preset so that each registers itself."""

from . import (  # noqa: F401
    alertmanager,
    aws_sns,
    azure_monitor,
    datadog,
    grafana,
    newrelic,
    opsgenie,
    pagerduty,
    sentry,
    uptime_kuma,
    uptimerobot,
    zabbix,
)
