"""Logger and metrics, created once and imported everywhere (style.md).

No powertools Tracer: it needs aws-xray-sdk, which costs ~0.5 s of cold start; Lambda's active tracing (template
``Tracing: Active``) still records each invocation.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="billbee-sevdesk")
metrics = Metrics(namespace="BillbeeSevdesk", service="billbee-sevdesk")
