"""The directory: tenants, users, groups, domains, licences, admin roles, and the SCIM store behind them."""
