"""Domain services: the rules of users, orders, notifications and insights, independent of HTTP."""
