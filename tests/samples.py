"""Rule text several test packages use: a firm's own rule, as a security officer would write it."""

SITE_RULES = """\
- id: SITE-TXT-EGRESS
  title: A text file written to an egress place
  category: classified-egress
  severity: low
  when:
    type: egress.file
    extension: txt
"""
