"""HTTP routes: thin functions that take the service from the gateway state and call it."""
