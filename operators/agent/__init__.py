"""The site-agent core: enrolment, the link, directive handling, local policy. No Kubernetes here."""
