"""`make bench`: figures, not assertions, each printed beside its bound. Prints cold-start import times, the pure
mapping's throughput, a whole local run (poll + exports) with and without Billbee's rate limits and the calls per
exported order, the poll's time and peak memory at 2,000 / 10,000 / 50,000 listed orders (each poll invocation in a
process of its own: ``local.poll_probe``), and the steady-state hourly poll of an account with 50,000 exported orders
and 1,000 waiting ones (issue 12).

    python -m local.bench [--orders N] [--sizes 2000,10000,50000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
POLL_TIMEOUT_S = 600  # template.yaml: PollFunction Timeout
POLL_BUDGET_S = POLL_TIMEOUT_S / 2  # functions/poll/app.py BUDGET_SHARE
POLL_MEMORY_BOUND_MIB = 256
BILLBEE_BOUND_ORDERS_PER_S = 2.0  # three calls per export on three endpoints, each 2 requests/s (billbee-api.md §8)
BILLBEE_CALLS_PER_ORDER_BOUND = 3.02
SEVDESK_CALLS_PER_ORDER_BOUND = 5.0
SCRATCH_LOG = Path("/tmp/bench-functions.log")  # noqa: S108 - the functions' log of a local benchmark


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
        with stack.function_logs(SCRATCH_LOG):
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


def backfill_throughput(orders: int, scale: float, workers: int) -> dict[str, Any]:
    """A backfill of ``orders`` orders of a year's history with the Billbee sandbox's limits K = ``scale`` times
    faster and the functions' limiter scaled alike: the poll lists everything, then ``workers`` export containers
    drain the queue. Exported orders per second over the export phase and over its steady middle (the 10th to the
    90th percentile of the exports' last Billbee call, leaving out the ramp at each end), 429s, and failed orders."""
    from local.history import order_history
    from local.stack import LocalStack

    with LocalStack(orders=order_history(orders), billbee_rate_scale=scale) as stack, \
            stack.function_logs(SCRATCH_LOG):
        stack.save_connection(_connection())
        started = time.perf_counter()
        for _ in range(50):  # a poll stops at its budget; the next one continues the listing
            if stack.poll()["connections"][0]["complete"]:
                break
        polled = time.perf_counter() - started
        stack.drain(workers=workers)
        drained = time.perf_counter() - started - polled
        states = Counter(r.state.value for r in stack.records(_connection()["connectionId"]))
        tagged = sorted(e.started for e in stack.billbee.exchanges if e.operation == "add_tags" and e.status == 200)
        throttled = dict(stack.billbee.throttled)
    cut = len(tagged) // 10
    middle = tagged[cut:len(tagged) - cut]
    steady = (len(middle) - 1) / (middle[-1] - middle[0]) if len(middle) > 1 else 0.0
    return {"orders": orders, "scale": scale, "workers": workers, "exported": states["EXPORTED"],
            "failed": states["FAILED"], "attention": states["NEEDS_ATTENTION"], "poll_s": polled,
            "export_s": drained, "export_rate": states["EXPORTED"] / drained, "steady_rate": steady,
            "throttled": throttled, "bound": BILLBEE_BOUND_ORDERS_PER_S * scale}


def _history_stack(orders: list[dict[str, Any]]) -> Any:
    from local.stack import LocalStack

    return LocalStack(orders=orders, billbee_rate_limits=False)


def _connection() -> dict[str, Any]:
    from local.history import history_connection

    return history_connection(json.loads((REPO / "local" / "sample_connection.json").read_text()))


def probe_poll(stack: Any) -> dict[str, Any]:
    """One PollFunction invocation in its own process against the stack's moto server and sandboxes."""
    env = {**os.environ, **stack.env, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "local.poll_probe"], env=env, cwd=REPO, capture_output=True, text=True, check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def poll_scaling(size: int) -> dict[str, Any]:
    """A first listing of ``size`` orders: invocations until the listing is complete, the longest and the peak."""
    from local.history import order_history

    with _history_stack(order_history(size)) as stack:
        stack.save_connection(_connection())
        invocations: list[dict[str, Any]] = []
        # On AWS the export function takes messages off the queue while the listing goes on. Here they are purged
        # every second instead (only the poll is measured): moto's SendMessageBatch slows with the queue's length.
        stop = threading.Event()
        sqs = stack.sqs()
        os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"  # moto serves from this process

        def consume() -> None:
            while not stop.wait(1.0):
                sqs.purge_queue(QueueUrl=stack.queue_url)

        consumer = threading.Thread(target=consume, name="queue-consumer", daemon=True)
        consumer.start()
        try:
            while len(invocations) < 50:
                figures = probe_poll(stack)
                invocations.append(figures)
                if figures["summary"]["connections"][0]["complete"]:
                    break
        finally:
            stop.set()
            consumer.join()
        listed = sum(f["summary"]["connections"][0]["listed"] for f in invocations)
    return {"size": size, "listed": listed, "invocations": len(invocations),
            "seconds": sum(f["seconds"] for f in invocations), "longest": max(f["seconds"] for f in invocations),
            "sqs": sum(f["sqsSeconds"] for f in invocations), "peak": max(f["peakMiB"] for f in invocations)}


def steady_state(exported: int = 50_000, waiting: int = 1_000) -> dict[str, Any]:
    """The hourly poll of an account whose history is exported (tagged) but for ``waiting`` orders without an
    invoice: Billbee calls and seconds of the second poll (the first one records the waiting orders)."""
    from local.history import order_history

    orders = order_history(exported + waiting)
    for order in orders[:exported]:
        order["Tags"] = [*(order.get("Tags") or []), _connection()["exportTag"]]
    for order in orders[exported:]:
        order["InvoiceNumber"], order["InvoiceDate"] = None, None
    with _history_stack(orders) as stack:
        stack.save_connection(_connection())
        probe_poll(stack)
        before = Counter((e.api, e.operation) for e in [*stack.billbee.exchanges, *stack.sevdesk.exchanges])
        figures = probe_poll(stack)
        after = Counter((e.api, e.operation) for e in [*stack.billbee.exchanges, *stack.sevdesk.exchanges])
    calls = after - before
    return {"seconds": figures["seconds"], "peak": figures["peakMiB"],
            "billbee": sum(n for (api, _op), n in calls.items() if api == "billbee"),
            "sevdesk": sum(n for (api, _op), n in calls.items() if api == "sevdesk"),
            "calls": {f"{api} {op}": n for (api, op), n in sorted(calls.items())},
            "summary": figures["summary"]["connections"][0]}


def calls_per_order(orders: int) -> dict[str, Any]:
    """Billbee and sevDesk calls per exported order over a whole run (listing amortised), and contacts created."""
    from local.history import order_history

    with _history_stack(order_history(orders)) as stack, stack.function_logs(SCRATCH_LOG):
        stack.save_connection(_connection())
        before = Counter((e.api, e.operation) for e in [*stack.billbee.exchanges, *stack.sevdesk.exchanges])
        stack.poll()
        stack.drain()
        calls = Counter((e.api, e.operation) for e in [*stack.billbee.exchanges, *stack.sevdesk.exchanges]) - before
        exported = sum(1 for r in stack.records("demo-shop") if r.state.value == "EXPORTED")
        contacts = len({r.steps.contact_id for r in stack.records("demo-shop") if r.steps.contact_id})
    billbee = sum(n for (api, _op), n in calls.items() if api == "billbee")
    sevdesk = sum(n for (api, _op), n in calls.items() if api == "sevdesk")
    contact_calls = sum(n for (api, op), n in calls.items()
                        if api == "sevdesk" and ("contact" in op or op == "create_communication_way"))
    return {"exported": exported, "billbee": billbee / max(1, exported),
            "sevdesk": (sevdesk - contact_calls) / max(1, exported), "contacts": contacts,
            "contact_calls": contact_calls, "calls": {f"{a} {o}": n for (a, o), n in sorted(calls.items())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.bench")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--sizes", default="2000,10000,50000", help="listed orders for the poll's scaling figures")
    parser.add_argument("--quick", action="store_true", help="small sizes only (2000 listed, 5,000 exported)")
    args = parser.parse_args(argv)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # the handlers' EMF lines would drown the figures

    print("cold-start import (python -X importtime, cumulative, this machine):")
    for function, ms in import_times().items():
        print(f"  {function:7s} {ms:8.1f} ms")
    print(f"pure order->voucher mapping: {mapping_throughput():,.0f} orders/s")
    from local.stack import EXPORT_CONCURRENCY

    figures = local_run(args.orders, rate_limits=False)
    print(
        f"local run, rate limits off (the local stack's own ceiling): {figures['exported']}/{figures['orders']} "
        f"exported in {figures['total_s']:.1f} s (poll {figures['poll_s']:.1f} s), {figures['orders_per_s']:.1f} "
        f"orders/s, {figures['api_calls']} API calls ({figures['api_calls'] / max(1, figures['orders']):.1f} per order)"
    )
    runs = [(200, 1.0), (500, 3.0), (2000, 10.0)] if not args.quick else [(200, 1.0)]
    print(f"backfill throughput with Billbee's limits on, K times faster ({EXPORT_CONCURRENCY} export containers, the "
          f"template's ExportConcurrency; bound: 2 orders/s x K, target 0.95 x the bound):")
    for orders, scale in runs:
        run = backfill_throughput(orders, scale, EXPORT_CONCURRENCY)
        print(f"  K={scale:g}, {run['orders']} orders: {run['exported']} exported ({run['attention']} need attention "
              f"by design, {run['failed']} failed); export phase {run['export_s']:.1f} s = {run['export_rate']:.2f} "
              f"orders/s = {run['export_rate'] / run['bound']:.3f} x the bound of {run['bound']:g}/s; steady middle "
              f"{run['steady_rate']:.2f} orders/s = {run['steady_rate'] / run['bound']:.3f} x the bound (target "
              f"0.95); poll {run['poll_s']:.1f} s; 429s from Billbee {run['throttled'] or 'none'}", flush=True)
    per_order = calls_per_order(args.orders)
    print(f"calls per exported order ({per_order['exported']} exported, listing amortised): Billbee "
          f"{per_order['billbee']:.2f} (bound {BILLBEE_CALLS_PER_ORDER_BOUND}), sevDesk {per_order['sevdesk']:.2f} "
          f"(bound {SEVDESK_CALLS_PER_ORDER_BOUND}) plus {per_order['contact_calls']} contact calls for "
          f"{per_order['contacts']} contacts")
    print(f"  {per_order['calls']}")
    sizes = [2000] if args.quick else [int(n) for n in args.sizes.split(",") if n]
    print(f"poll of a first listing (each invocation in its own process; budget {POLL_BUDGET_S:.0f} s of "
          f"{POLL_TIMEOUT_S} s, peak memory bound {POLL_MEMORY_BOUND_MIB} MiB):")
    for size in sizes:
        scaling = poll_scaling(size)
        print(f"  {scaling['size']:>6} orders: {scaling['listed']} listed in {scaling['invocations']} invocation(s), "
              f"{scaling['seconds']:.1f} s in all ({scaling['seconds'] / max(1, scaling['listed']) * 1000:.1f} ms "
              f"per order; {scaling['seconds'] - scaling['sqs']:.1f} s without moto's SQS sends, which grow with the "
              f"queue); longest invocation {scaling['longest']:.1f} s (bound {POLL_BUDGET_S:.0f} s); peak "
              f"{scaling['peak']:.1f} MiB (bound {POLL_MEMORY_BOUND_MIB} MiB)", flush=True)
    exported = 5_000 if args.quick else 50_000
    steady = steady_state(exported, 1_000)
    print(f"steady-state hourly poll ({exported} exported, 1000 waiting): {steady['billbee']} Billbee calls, "
          f"{steady['sevdesk']} sevDesk calls, {steady['seconds']:.1f} s, peak {steady['peak']:.1f} MiB "
          f"(target: a handful of calls and seconds); {steady['calls']}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
