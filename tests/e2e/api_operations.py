"""Every operation of the HTTP API, in one place for the tests that check the served OpenAPI document."""

OPERATIONS = [
    ("GET", "/connections"),
    ("PUT", "/connections/{connectionId}"),
    ("GET", "/connections/{connectionId}"),
    ("DELETE", "/connections/{connectionId}"),
    ("GET", "/connections/{connectionId}/setup-options"),
    ("POST", "/connections/{connectionId}/setup-options"),
    ("POST", "/connections/{connectionId}/payment-accounts"),
    ("POST", "/connections/{connectionId}/exports"),
    ("GET", "/connections/{connectionId}/orders"),
    ("GET", "/connections/{connectionId}/orders/{orderId}"),
    ("GET", "/connections/{connectionId}/orders/{orderId}/explanation"),
    ("POST", "/connections/{connectionId}/orders/{orderId}/retry"),
    ("POST", "/connections/{connectionId}/orders/{orderId}/handled"),
    ("GET", "/connections/{connectionId}/dead-letters"),
    ("GET", "/connections/{connectionId}/reconciliation"),
]
