"""Customers' /account: sign in by emailed link, see every order of that email, keys, pay again."""
