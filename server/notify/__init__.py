"""Notifications: channels (apprise URLs), the outbox written with each alert, and the sender thread.

channels.py      what a channel is, where each scheme connects (SCHEMES), URL checks and redaction
channelstore.py  channels in the database (config ones synced at startup, API ones)
netcheck.py      which addresses a notification may reach (SSRF), lookups pinned while apprise sends
messages.py      bilingual, injection-safe message bodies
tlds.py          top-level domains, for defanging bare domain names in messages
outbox.py        enqueue with the alert, claim with a lease, rate limits and digests, retries
transport.py     JSON webhooks by our own code, the rest by apprise
sender.py        the background thread
"""
