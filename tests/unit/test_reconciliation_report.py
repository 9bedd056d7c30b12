"""The reconciliation's arithmetic (issue 15), pure: records in, report out.

Examples read like the bookkeeper's questions ("an invoice whose voucher is dated into the next month is different,
not missing"); the properties hold for any input hypothesis makes up: every Billbee document and every voucher of the
period lands on exactly one line, and every total is the sum of what its lines count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.reconciliation.report import (
    Amounts,
    BillbeeDocument,
    Category,
    ExportInfo,
    Kind,
    Line,
    Period,
    SevdeskVoucher,
    reconcile,
    split_gross,
)

D = Decimal
NOVEMBER = Period.month(2026, 11)


def rates(**gross: str) -> dict[Decimal, Amounts]:
    """``rates(r19="40.80", r7="-9.80")``: gross per rate, split as sevDesk splits a gross position."""
    return {D(key[1:]): split_gross(D(value), D(key[1:])) for key, value in gross.items()}


def invoice(number: str, day: date = date(2026, 11, 10), *, kind: Kind = Kind.INVOICE, tax_rule: int | None = 1,
            **gross: str) -> BillbeeDocument:
    amounts = rates(**gross) or rates(r19="119")
    return BillbeeDocument(number, kind, day, 0 if tax_rule == 1 else None, tax_rule, amounts)


def voucher(voucher_id: str, number: str | None, day: date = date(2026, 11, 10), *, status: str = "1000",
            tax_rule: int | None = 1, **gross: str) -> SevdeskVoucher:
    amounts = rates(**gross) or rates(r19="119")
    paid = sum((a.gross for a in amounts.values()), D(0)) if status == "1000" else D(0)
    return SevdeskVoucher(voucher_id, number, day, tax_rule, status, paid, amounts)


def only(lines: Iterable[Line], number: str) -> Line:
    (line,) = [line for line in lines if line.number == number]
    return line


# -- periods ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "first", "last"), [
    ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
    ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
    ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
    ("2026-q1", date(2026, 1, 1), date(2026, 3, 31)),
    ("2026-11-05..2026-11-20", date(2026, 11, 5), date(2026, 11, 20)),
])
def test_a_period_is_a_month_a_quarter_or_from_to(text: str, first: date, last: date) -> None:
    assert Period.parse(text) == Period(first, last)


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "November", "2026-11-30..2026-11-01", "2025-01-01..2026-06-30",
                                  "1999-12", "2100-01"])
def test_a_period_that_is_no_period_is_refused_with_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError):
        Period.parse(text)


def test_a_gross_amount_splits_into_net_and_vat_half_up_to_the_cent() -> None:
    assert split_gross(D("119"), D(19)) == Amounts(D("119.00"), D("100.00"), D("19.00"))
    assert split_gross(D("3.85"), D(19)) == Amounts(D("3.85"), D("3.24"), D("0.61"))
    assert split_gross(D("-40.80"), D(7)) == Amounts(D("-40.80"), D("-38.13"), D("-2.67"))
    assert split_gross(D("20"), D(0)) == Amounts(D("20.00"), D("20.00"), D("0.00"))


# -- the categories -------------------------------------------------------------------------------------------------
def test_an_exported_invoice_with_the_same_gross_per_rate_and_tax_rule_is_matched_and_the_month_reconciles() -> None:
    report = reconcile(NOVEMBER, [invoice("RE-1", r19="40.80", r7="16.00")],
                       [voucher("7", "RE-1", r19="40.80", r7="16.00")])
    (line,) = report.lines
    assert line.sevdesk is not None
    assert (line.category, line.sevdesk.voucher_id, line.reasons) == (Category.MATCHED, "7", ())
    assert report.reconciles
    assert [(row.tax_rule, row.rate, row.billbee.gross, row.difference.gross) for row in report.totals] == [
        (1, D(19), D("40.80"), D(0)), (1, D(7), D("16.00"), D(0))]


def test_an_unpaid_voucher_is_open_when_payments_are_reconciled_in_billbee_and_matched_when_in_sevdesk() -> None:
    documents, vouchers = [invoice("RE-1")], [voucher("7", "RE-1", status="100")]
    (line,) = reconcile(NOVEMBER, documents, vouchers, reconciliation_in_billbee=True).lines
    assert line.category is Category.OPEN
    assert line.reasons == ("voucher 7 is open (status 100): 0.00 of 119.00 paid, although payments are reconciled "
                            "in Billbee",)
    (line,) = reconcile(NOVEMBER, documents, vouchers, reconciliation_in_billbee=False).lines
    assert line.category is Category.MATCHED
    assert reconcile(NOVEMBER, documents, vouchers).reconciles  # open is booked revenue: it still reconciles


def test_a_voucher_with_another_gross_at_a_rate_or_another_tax_rule_is_different_and_says_where() -> None:
    report = reconcile(NOVEMBER, [invoice("RE-1", r19="40.80", r7="16.00"), invoice("RE-2")],
                       [voucher("7", "RE-1", r19="40.70", r7="16.00"), voucher("8", "RE-2", tax_rule=3)])
    assert only(report.lines, "RE-1").reasons == ("gross at 19 %: Billbee 40.80, sevDesk 40.70",)
    assert only(report.lines, "RE-2").reasons == (
        "tax rule: Billbee 1 (taxable sales) (VatMode 0), sevDesk 3 (intra-EU supply)",)
    assert {line.category for line in report.lines} == {Category.DIFFERENT}
    assert not report.reconciles
    by_key = {(row.tax_rule, row.rate): row for row in report.totals}
    assert by_key[(1, D(19))].difference.gross == D("119.10")  # 40.80 - 40.70, and RE-2 only on Billbee's side
    assert by_key[(3, D(19))].sevdesk.gross == D("119.00")


def test_a_missing_voucher_names_the_export_state_and_reason() -> None:
    failed = ExportInfo(11, "NEEDS_ATTENTION", "the invoice carries 20 % VAT, a foreign EU rate", None)
    exported = ExportInfo(12, "EXPORTED", None, "99")
    report = reconcile(NOVEMBER, [invoice("RE-1"), invoice("RE-2"), invoice("RE-3")], [],
                       exports={"RE-1": failed, "RE-2": exported})
    assert only(report.lines, "RE-1").reasons == (
        "not in sevDesk; export NEEDS_ATTENTION: the invoice carries 20 % VAT, a foreign EU rate",)
    assert only(report.lines, "RE-2").reasons == (
        "not in sevDesk; export EXPORTED with voucher 99, which sevDesk does not hold (any more)",)
    assert "no export record" in only(report.lines, "RE-3").reasons[0]
    assert report.counts["missing"] == 3
    assert report.sevdesk_total == Amounts() and report.billbee_total.gross == D("357.00")


def test_an_invoice_whose_voucher_is_dated_into_the_next_month_is_different_and_only_billbee_counts_it() -> None:
    next_month = voucher("7", "RE-1", date(2026, 12, 1))
    report = reconcile(NOVEMBER, [invoice("RE-1", date(2026, 11, 30))], [], elsewhere={"RE-1": [next_month]})
    (line,) = report.lines
    assert line.category is Category.DIFFERENT and line.sevdesk is next_month and not line.sevdesk_in_period
    assert line.reasons == ("voucher 7 is dated 2026-12-01, outside the period (invoice date 2026-11-30)",)
    (row,) = report.totals
    assert (row.billbee.gross, row.sevdesk.gross, row.difference.gross) == (D("119.00"), D(0), D("119.00"))

    # December: the same voucher, seen from its own month, belongs to an invoice of November.
    record = ExportInfo(1, "EXPORTED", None, "7", date(2026, 11, 30), invoice("RE-1", date(2026, 11, 30)))
    december = reconcile(Period.month(2026, 12), [], [next_month], exports={"RE-1": record})
    (line,) = december.lines
    assert line.category is Category.DIFFERENT and not line.billbee_in_period and line.sevdesk_in_period
    assert line.reasons == ("invoice date 2026-11-30 is outside the period (voucher 7 dated 2026-12-01)",)
    (row,) = december.totals
    assert (row.billbee.gross, row.sevdesk.gross, row.difference.gross) == (D(0), D("119.00"), D("-119.00"))


def test_a_voucher_entered_by_hand_and_a_second_one_with_a_number_are_extra() -> None:
    record = ExportInfo(1, "EXPORTED", None, "9")
    report = reconcile(NOVEMBER, [invoice("RE-1")],
                       [voucher("7", "RE-1"), voucher("9", "RE-1"), voucher("8", "Barverkauf 15.11.", r19="50")],
                       exports={"RE-1": record})
    line = only([li for li in report.lines if li.category is not Category.EXTRA], "RE-1")
    assert line.sevdesk is not None and line.sevdesk.voucher_id == "9"  # the one its export wrote, though 7 is older
    extra = sorted((li.sevdesk.voucher_id, li.reasons) for li in report.lines
                   if li.category is Category.EXTRA and li.sevdesk is not None)
    assert extra == [
        ("7", ("a second voucher with the number RE-1; voucher 9 is the one matched with Billbee's document",)),
        ("8", ("no Billbee invoice or credit note of the period has the number Barverkauf 15.11.",)),
    ]
    (row,) = report.totals
    assert (row.billbee.gross, row.sevdesk.gross, row.difference.gross) == (D("119.00"), D("288.00"), D("-169.00"))


def test_a_credit_note_is_matched_by_its_own_number_with_negative_amounts() -> None:
    note = invoice("GS-1", kind=Kind.CREDIT_NOTE, r19="-24.80", r7="-16.00")
    report = reconcile(NOVEMBER, [invoice("RE-1", r19="40.80", r7="16.00"), note],
                       [voucher("7", "RE-1", r19="40.80", r7="16.00"), voucher("8", "GS-1", r19="-24.80", r7="-16.00")])
    assert [line.category for line in report.lines] == [Category.MATCHED, Category.MATCHED]
    assert report.billbee_total == report.sevdesk_total
    assert report.billbee_total.gross == D("16.00")
    assert report.reconciles


def test_a_number_billbee_lists_twice_is_matched_once_and_the_second_is_different() -> None:
    report = reconcile(NOVEMBER, [invoice("RE-1"), invoice("RE-1", date(2026, 11, 11))], [voucher("7", "RE-1")])
    assert sorted(line.category for line in report.lines) == [Category.DIFFERENT, Category.MATCHED]
    assert report.billbee_total.gross == D("238.00")  # Billbee invoiced it twice: both count


def test_a_vat_mode_without_a_voucher_tax_rule_is_totalled_apart() -> None:
    report = reconcile(NOVEMBER, [invoice("RE-1", tax_rule=None, r0="50"), invoice("RE-2", r0="50")],
                       [voucher("7", "RE-2", r0="50")])
    assert [(row.tax_rule, row.rate, row.billbee.gross) for row in report.totals] == [
        (1, D(0), D("50.00")), (None, D(0), D("50.00"))]


# -- properties ------------------------------------------------------------------------------------------------------
NUMBERS = st.sampled_from([f"RE-{n}" for n in range(8)] + ["GS-1", "Barverkauf", ""])
RATES = st.sampled_from([D(19), D(7), D(0)])
GROSS = st.decimals(min_value=D("-500"), max_value=D("500"), places=2, allow_nan=False, allow_infinity=False)
DAYS = st.integers(min_value=-5, max_value=35).map(lambda n: date(2026, 11, 1) + timedelta(days=n))
RULES = st.sampled_from([1, 2, 3, 11, None])
AMOUNTS = st.dictionaries(RATES, GROSS, min_size=1, max_size=3).map(
    lambda gross: {rate: split_gross(value, rate) for rate, value in gross.items()})


@st.composite
def documents(draw: st.DrawFn) -> list[BillbeeDocument]:
    items = draw(st.lists(st.tuples(NUMBERS.filter(bool), DAYS.filter(NOVEMBER.contains), RULES, AMOUNTS),
                          max_size=12))
    return [BillbeeDocument(n, Kind.INVOICE, d, None, r, a) for n, d, r, a in items]


@st.composite
def vouchers(draw: st.DrawFn, *, in_period: bool) -> list[SevdeskVoucher]:
    days = DAYS.filter(NOVEMBER.contains) if in_period else DAYS.filter(lambda d: not NOVEMBER.contains(d))
    items = draw(st.lists(st.tuples(NUMBERS, days, RULES, st.sampled_from(["100", "750", "1000"]), AMOUNTS),
                          max_size=12))
    prefix = "p" if in_period else "e"
    return [SevdeskVoucher(f"{prefix}{i}", n or None, d, r, s, D(0), a) for i, (n, d, r, s, a) in enumerate(items)]


@st.composite
def exports(draw: st.DrawFn) -> dict[str, ExportInfo]:
    numbers = draw(st.lists(NUMBERS.filter(bool), unique=True, max_size=6))
    return {n: ExportInfo(i, draw(st.sampled_from(["EXPORTED", "FAILED", "NEEDS_ATTENTION"])), None,
                          draw(st.sampled_from([None, "p0", "e1"])), draw(DAYS)) for i, n in enumerate(numbers)}


def _sum(rows: list[dict[Decimal, Amounts]], rules: list[int | None]) -> dict[tuple[int | None, Decimal], Amounts]:
    out: dict[tuple[int | None, Decimal], Amounts] = {}
    for amounts, rule in zip(rows, rules, strict=True):
        for rate, value in amounts.items():
            out[(rule, rate)] = out.get((rule, rate), Amounts()) + value
    return out


@settings(max_examples=300, deadline=None)
@given(documents(), vouchers(in_period=True), vouchers(in_period=False), exports(), st.booleans())
def test_every_document_and_every_voucher_of_the_period_lands_on_exactly_one_line_and_totals_add_up(
    billbee: list[BillbeeDocument], period_vouchers: list[SevdeskVoucher], other_vouchers: list[SevdeskVoucher],
    records: dict[str, ExportInfo], in_billbee: bool,
) -> None:
    elsewhere: dict[str, list[SevdeskVoucher]] = {}
    for item in other_vouchers:
        elsewhere.setdefault(item.number or "", []).append(item)
    report = reconcile(NOVEMBER, billbee, period_vouchers, elsewhere=elsewhere, exports=records,
                       reconciliation_in_billbee=in_billbee)

    # Every Billbee document on exactly one line, counted in the period; every voucher of the period likewise.
    on_lines = Counter(id(line.billbee) for line in report.lines if line.billbee is not None and line.billbee_in_period)
    assert on_lines == Counter(id(d) for d in billbee)
    in_period = Counter(line.sevdesk.voucher_id for line in report.lines
                        if line.sevdesk is not None and line.sevdesk_in_period)
    assert in_period == Counter(v.voucher_id for v in period_vouchers)
    outside = Counter(line.sevdesk.voucher_id for line in report.lines
                      if line.sevdesk is not None and not line.sevdesk_in_period)
    assert all(count == 1 for count in outside.values())
    assert set(outside) <= {v.voucher_id for v in other_vouchers}

    # Each category is what it says.
    for line in report.lines:
        if line.category is Category.MISSING:
            assert line.billbee is not None and line.sevdesk is None and line.reasons
        elif line.category is Category.EXTRA:
            assert line.billbee is None and line.sevdesk is not None and line.sevdesk_in_period
        elif line.category in (Category.MATCHED, Category.OPEN):
            assert line.billbee is not None and line.sevdesk is not None
            assert line.billbee_in_period and line.sevdesk_in_period
            assert line.billbee.number == line.sevdesk.number
            # A rate at 0.00 on one side and absent on the other is the same money.
            assert {r: a.gross for r, a in line.billbee.rates.items() if a.gross} == {
                r: a.gross for r, a in line.sevdesk.rates.items() if a.gross}
            assert line.billbee.tax_rule == line.sevdesk.tax_rule
            assert (line.category is Category.OPEN) == (in_billbee and not line.sevdesk.is_paid)
        else:
            assert line.reasons
    assert sum(report.counts.values()) == len(report.lines)

    # Totals: the sum of what the lines count, which is every document and every voucher of the period.
    by_key = {(row.tax_rule, row.rate): row for row in report.totals}
    expected_billbee = _sum([dict(d.rates) for d in billbee], [d.tax_rule for d in billbee])
    expected_sevdesk = _sum([dict(v.rates) for v in period_vouchers], [v.tax_rule for v in period_vouchers])
    assert set(by_key) == set(expected_billbee) | set(expected_sevdesk)
    for key, row in by_key.items():
        assert row.billbee == expected_billbee.get(key, Amounts())
        assert row.sevdesk == expected_sevdesk.get(key, Amounts())
        assert row.difference == row.billbee - row.sevdesk
    from_lines = _sum([dict(line.billbee_counted) for line in report.lines if line.billbee is not None],
                      [line.billbee.tax_rule for line in report.lines if line.billbee is not None])
    assert {k: v for k, v in from_lines.items()} == expected_billbee
    assert report.billbee_total - report.sevdesk_total == sum(
        (row.difference for row in report.totals), Amounts())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NUMBERS.filter(bool), RULES, AMOUNTS), unique_by=lambda t: t[0], max_size=10))
def test_when_each_document_has_exactly_its_voucher_the_period_reconciles(
    items: list[tuple[str, int | None, dict[Decimal, Amounts]]],
) -> None:
    billbee = [BillbeeDocument(n, Kind.INVOICE, date(2026, 11, 3), None, r, a) for n, r, a in items]
    sevdesk = [SevdeskVoucher(str(i), n, date(2026, 11, 4), r, "1000", D(0), a) for i, (n, r, a) in enumerate(items)]
    report = reconcile(NOVEMBER, billbee, sevdesk)
    assert report.reconciles
    assert report.counts["matched"] == len(items) and len(report.lines) == len(items)
