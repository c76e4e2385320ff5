"""/mgmt's pages and actions, one module per resource: overview, orders, licenses, notifications,
events. Every action is a command (audit.commands) behind the one confirm view (confirm.py)."""
