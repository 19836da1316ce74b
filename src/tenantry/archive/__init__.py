"""The archive: a mailbox per user, folders, and items stored as the raw RFC 5322 bytes they were delivered as."""
