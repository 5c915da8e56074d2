"""The site operator: binds the site-agent core (``operators.agent``) to a Kubernetes cluster.

FederationLink -> enrollment and the link (a kopf daemon); directives -> federation-owned
ModelDeployments; ModelDeployment -> Deployment + Service; SitePolicy -> the agent's LocalPolicy.
See docs/site-operator.md.
"""
