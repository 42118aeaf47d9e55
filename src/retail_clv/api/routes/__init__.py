"""One router per resource; :func:`retail_clv.api.app.create_app` includes them all."""
