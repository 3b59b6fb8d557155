"""The mail-ingest service: mailboxes (IMAP, Maildir) → raw mail stored → parsed → tickets."""
