"""OAuth2 for IMAP: the XOAUTH2/OAUTHBEARER tokens, their refresh, and the browser consent flow."""
