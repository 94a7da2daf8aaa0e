"""The salts of the bridge's signed links: a link of one kind never opens another."""

INCIDENT_SALT = "bridge.incidents"
STORM_SALT = "bridge.storms"
