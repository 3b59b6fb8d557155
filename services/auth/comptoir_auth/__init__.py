"""The auth service: accounts, roles, passwords and sign-in."""
