"""Message archive connectors: sources (WhatsApp exports, an archiver feed) → e-mail → participants' mailboxes."""
