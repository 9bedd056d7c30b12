"""The preflight (issue 11): the connector's own code against the merchant's live Billbee and sevDesk accounts,
read-only, showing exactly what it would book before anything is booked.

- ``guard.py``: the transport under both clients that lets only reads leave the process;
- ``preview.py``: setup checks, the poll's listing, and per order what the export would do;
- ``observations.py``: what the run saw about the open questions of docs/real-apis.md;
- ``report.py``: preflight.json, preflight.html, observations.json, requests.jsonl;
- ``cli.py``: ``python -m local.preflight`` / ``make preflight``.
"""
