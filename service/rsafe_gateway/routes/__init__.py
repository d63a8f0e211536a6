"""HTTP routes: thin functions that fetch the service from `app.state` and call it."""
