"""Deploy tests: the shipped rules, dashboards, manifests, image and workflows, with real tools."""
