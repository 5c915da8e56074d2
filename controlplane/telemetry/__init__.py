"""Process telemetry shared by the control plane and the site operators: structured logs
(``logs``) and Prometheus metrics (``metrics``). Imports nothing of the application layers, so
services, servers, clients and operators may all use it."""
