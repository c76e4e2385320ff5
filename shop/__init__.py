"""What several apps share and no app owns: money, rows written without the ORM, rate limits,
the client's address, durations, redirects, admin columns. A plain package, not an app: it has
no models, and it imports no app."""
