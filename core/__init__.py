"""Types and checks that every layer shares (handlers, actions, jobs, store, f2b may all import these;
`core` itself imports none of them at runtime): roles, the acting party, the dependency bundle, and
the parsing of jail names and addresses."""
