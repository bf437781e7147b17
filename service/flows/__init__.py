"""Use cases that span domains (docs/architecture.md): each one calls the domain services in order,
inside the caller's transaction, so that no two domain packages need to import each other."""
