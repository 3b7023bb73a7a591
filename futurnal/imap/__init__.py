"""The IMAP protocol: sessions and their connector, connection budgets, wire limits, errors, UID
sets, the server's folders, and watching a folder with IDLE or NOTIFY. No sync policy lives here."""
