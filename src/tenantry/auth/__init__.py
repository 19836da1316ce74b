"""Console sign-in: local administrator passwords and OpenID Connect single sign-on, ending in a browser
session that belongs to one active directory user of one tenant (docs/sign-in.md)."""
