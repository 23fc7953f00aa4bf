"""The web side: the bounded HTTP server, basic auth, the web config, routes, the status page."""
