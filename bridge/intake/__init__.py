"""The HTTP edge: parse, guard, validate, map, enqueue — and answer only after the commit."""
