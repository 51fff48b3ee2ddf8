"""The Functions page: every registered function, and one in detail."""
