"""`make bench`: figures, not assertions. Prints cold-start import times, the pure mapping's throughput, and a
whole local run (poll + exports) with and without Billbee's rate limits, with peak memory.

    python -m local.bench [--orders N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def import_times() -> dict[str, float]:
    """Cumulative import time of each handler module in a fresh interpreter (what a cold start pays)."""
    results = {}
    for function in ("poll", "export", "api"):
        env = {
            **os.environ,
            "PYTHONPATH": f"{REPO / 'layers' / 'core'}{os.pathsep}{REPO / 'functions' / function}",
            "TABLE_NAME": "bench",
            "EXPORT_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/123456789012/bench",
            "API_TOKEN_SECRET_ID": "bench",
            "AWS_DEFAULT_REGION": "eu-central-1",
        }
        output = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-X", "importtime", "-c", "import app"],
            env=env, capture_output=True, text=True, check=True,
        ).stderr
        line = next(line for line in output.splitlines() if line.rstrip().endswith("| app"))
        results[function] = int(line.split("|")[1]) / 1000
    return results


def mapping_throughput(rounds: int = 20) -> float:
    from connector.billbee.models import InvoiceDetails, Order
    from connector.bookkeeping.voucher import plan_voucher
    from connector.settings.model import ConnectionSettings
    from connector.sevdesk.bodies import save_voucher_body
    from local.sample_shop import sample_orders
    from local.sandbox.invoices import invoice_for

    settings = ConnectionSettings.model_validate(json.loads((REPO / "local" / "sample_connection.json").read_text())
                                                 | {"credentials": None})
    pairs = [(o, invoice_for(o)) for o in sample_orders() if o.get("InvoiceNumber")]
    started = time.perf_counter()
    count = 0
    for _ in range(rounds):
        for raw, invoice in pairs:
            plan = plan_voucher(Order.model_validate(raw), InvoiceDetails.model_validate(invoice), settings)
            save_voucher_body(plan, filename="x.pdf", contact_id=None)
            count += 1
    return count / (time.perf_counter() - started)


def local_run(orders: int, rate_limits: bool) -> dict[str, float]:
    from local.sample_shop import sample_orders
    from local.stack import LocalStack

    base = [o for o in sample_orders() if o.get("InvoiceNumber")]
    generated = []
    for i in range(orders):
        order = json.loads(json.dumps(base[i % len(base)]))
        order["BillBeeOrderId"] = 400000000000000 + i
        order["InvoiceNumber"] = 50000 + i
        generated.append(order)
    connection = json.loads((REPO / "local" / "sample_connection.json").read_text())
    with LocalStack(orders=generated, billbee_rate_limits=rate_limits) as stack:
        log = Path("/tmp/bench-functions.log")  # noqa: S108 - a scratch log of a local benchmark
        with stack.function_logs(log):
            stack.save_connection(connection)
            started = time.perf_counter()
            stack.poll()
            polled = time.perf_counter() - started
            stack.drain()
            total = time.perf_counter() - started
            exported = sum(1 for r in stack.records("demo-shop") if r.state.value == "EXPORTED")
            calls = len(stack.exchanges())
    return {"orders": orders, "exported": exported, "poll_s": polled, "total_s": total,
            "orders_per_s": exported / total, "api_calls": calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.bench")
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # the handlers' EMF lines would drown the figures

    print("cold-start import (python -X importtime, cumulative, this machine):")
    for function, ms in import_times().items():
        print(f"  {function:7s} {ms:8.1f} ms")
    print(f"pure order->voucher mapping: {mapping_throughput():,.0f} orders/s")
    for rate_limits in (False, True):
        n = args.orders if not rate_limits else min(args.orders, 40)
        figures = local_run(n, rate_limits)
        label = "with Billbee's 2 req/s limits" if rate_limits else "rate limits off"
        print(
            f"local run, {label}: {figures['exported']}/{figures['orders']} exported in {figures['total_s']:.1f} s "
            f"(poll {figures['poll_s']:.1f} s), {figures['orders_per_s']:.1f} orders/s, "
            f"{figures['api_calls']} API calls ({figures['api_calls'] / max(1, figures['orders']):.1f} per order)"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
