"""The site side: the site-agent core (no Kubernetes) and the kopf operator that binds it."""
