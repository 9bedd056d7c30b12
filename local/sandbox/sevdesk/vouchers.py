"""Vouchers: uploadTempFile, saveVoucher, voucher and position reads, and the documents attached to vouchers.

Paying a voucher (bookAmount, resetToOpen) is in ``payments``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from local.sandbox.base import Request, Response
from local.sandbox.sevdesk.core import SevdeskCore
from local.sandbox.sevdesk.wire import (
    _UNIX,
    EXPENSE_TAX_RULES,
    INVOICE_ONLY_TAX_RULES,
    REVENUE_TAX_RULES,
    SEV_CLIENT,
    SEV_USER,
    TAX_RATE_NAMES,
    TAX_TYPES_V1,
    SevdeskApiError,
    _berlin_midnight,
    _decimal,
    _flag,
    _id_of,
    _json_number,
    _money,
    _not_found,
    _now_iso,
    _num,
    _parse_document_day,
    _php_truthy,
    _ref,
    _to_berlin,
)


class VouchersMixin(SevdeskCore):
    """``/Voucher/Factory/uploadTempFile``, ``/Voucher/Factory/saveVoucher``, ``GET /Voucher``, ``GET /VoucherPos``."""

    # -- files ---------------------------------------------------------------------------------------------------
    def _upload_temp_file(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            # The spec says media type "form-data"; the real endpoint wants multipart with field `file` (docs §3).
            raise SevdeskApiError(400, "Bad request: expected multipart/form-data with a field 'file'")
        _, files = request.multipart()
        upload = files.get("file")
        if upload is None:
            raise SevdeskApiError(400, "Bad request: no file in field 'file'")
        if not upload.data:
            raise SevdeskApiError(422, "The uploaded file is empty")
        data = upload.data
        origin = _sniff_mime(data, upload.content_type)
        extension = {"application/pdf": "pdf", "application/xml": "xml", "text/xml": "xml"}.get(origin, "")
        if not extension:
            extension = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else "bin"
        filename = f"{secrets.token_hex(16)}.{extension}"
        digest = hashlib.sha256(data).hexdigest()
        e_invoice = extension == "xml" and b"CrossIndustryInvoice" in data
        self.temp_files[filename] = {
            "filename": filename,
            "originalName": upload.filename,
            "mimeType": origin,
            "size": len(data),
            "sha256": digest,
            "data": data,
            "pages": max(1, len(re.findall(rb"/Type\s*/Page(?!s)", data))) if origin == "application/pdf" else 1,
        }
        return self._ok(
            {
                "pages": self.temp_files[filename]["pages"],
                "mimeType": "image/jpg",  # sevDesk answers image/jpg for PDFs too (spec example, [JRS] fixture)
                "originMimeType": origin,
                "filename": filename,
                "contentHash": digest,
                "content": [],
                "isEInvoice": e_invoice,
            },
            status=201,
        )

    def file_bytes(self, filename: str) -> bytes:
        """The bytes of an uploaded temp file (for tests)."""
        with self.lock:
            return bytes(self.temp_files[filename]["data"])

    # -- vouchers: saveVoucher -------------------------------------------------------------------------------------
    def _save_voucher(self, request: Request) -> Response:
        body = self._body(request)
        voucher_in = body.get("voucher")
        if not isinstance(voucher_in, dict):
            raise SevdeskApiError(422, "voucher is required")
        positions_in = body.get("voucherPosSave") or []
        deletes_in = body.get("voucherPosDelete") or []
        if not isinstance(positions_in, list) or not all(isinstance(p, dict) for p in positions_in):
            raise SevdeskApiError(422, "voucherPosSave must be a list of VoucherPos objects")
        if not isinstance(deletes_in, list):
            raise SevdeskApiError(422, "voucherPosDelete must be a list of {id, objectName} or null")

        existing: dict[str, Any] | None = None
        if voucher_in.get("id") not in (None, "", 0):
            existing_id = _id_of(voucher_in.get("id"))
            existing = self.vouchers.get(existing_id) if existing_id is not None else None
            if existing is None:
                raise _not_found("Voucher", voucher_in.get("id"))
            if existing["status"] != 50:
                # Only drafts change (pitfall 7, [JRS] measured: 400 with code 90400).
                raise SevdeskApiError(400, "Use resetToDraft first", code=90400)
        fields = {**(existing["input"] if existing else {}), **voucher_in}
        header = self._validate_voucher(fields)

        filename = body.get("filename")
        if filename is not None and not isinstance(filename, str):
            raise SevdeskApiError(422, f"Invalid value for filename: {filename!r}")
        if filename not in (None, "") and filename not in self.temp_files:
            raise SevdeskApiError(
                422, f"The file {filename} could not be found; upload it with /Voucher/Factory/uploadTempFile first"
            )
        delete_ids = self._validate_deletes(deletes_in, existing)
        if existing is None and not positions_in:
            raise SevdeskApiError(422, "A voucher needs at least one position (voucherPosSave)")
        positions = [self._validate_position(p, i, header, existing) for i, p in enumerate(positions_in)]
        if len({p["net"] for p in positions}) > 1:
            raise SevdeskApiError(
                422, "All voucher positions must use the same value for 'net' (either all net or all gross amounts)"
            )

        if self.negative_vouchers == "reject" and sum((p["amount"] for p in positions), Decimal(0)) < 0:
            raise SevdeskApiError(422, "The sum of a voucher must not be negative")

        # Everything is valid: apply.
        now = _now_iso()
        voucher_id = existing["id"] if existing else self._allocate("Voucher")
        for pos_id in delete_ids:
            del self.positions[pos_id]
        rate = header["propertyExchangeRate"]
        saved_positions = []
        for pos in positions:
            pos_id = pos.pop("id") or self._allocate("VoucherPos")
            old = self.positions.get(pos_id)
            record = {
                **pos,
                "id": pos_id,
                "voucher": voucher_id,
                "create": old["create"] if old else now,
                "update": now,
            }
            record.update(_position_sums(record, rate))
            self.positions[pos_id] = record
            saved_positions.append(record)
        # sevDesk totals only the positions sent in THIS call ([JRS] measured; pitfall 7).
        totals = {
            key: sum((p[key] for p in saved_positions), Decimal(0))
            for key in (
                "sumNet",
                "sumTax",
                "sumGross",
                "sumNetForeignCurrency",
                "sumTaxForeignCurrency",
                "sumGrossForeignCurrency",
            )
        }
        voucher = {
            **header,
            **totals,
            "id": voucher_id,
            "input": {k: v for k, v in fields.items() if k != "id"},
            "create": existing["create"] if existing else now,
            "update": now,
            "paidAmount": existing["paidAmount"] if existing else Decimal(0),
            "payDate": existing["payDate"] if existing else None,
            "document": existing["document"] if existing else None,
            "showNet": bool(positions and positions[0]["net"]),
        }
        document = None
        if filename not in (None, ""):
            document = self._attach_document(str(filename), voucher_id, now)
            voucher["document"] = document["id"]
        self.vouchers[voucher_id] = voucher
        # {voucher, voucherPos, [document,] vatdrop} (write_voucher_save_create.json and, with a file,
        # write_voucher_save_update_release_attach.json); no "filename" key, although docs §3 shows one.
        result: dict[str, Any] = {
            "voucher": self._render_voucher(voucher, answer="updated" if existing else "created"),
            "voucherPos": [self._render_position(p, saved_now=True) for p in saved_positions],
        }
        if document is not None:
            result["document"] = self._render_document(document)
        result["vatdrop"] = "not relevant"
        return self._ok(result, status=201)

    def _validate_voucher(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The voucher header as sevDesk 2.0 checks it; returns the normalised header (no state is changed)."""
        if fields.get("objectName") != "Voucher":
            raise SevdeskApiError(422, "objectName must be 'Voucher'")
        status = _id_of(fields.get("status"))
        if status not in (50, 100):
            # Update 2.0: create/update as draft (50) or open (100) only; paid only via bookAmount (pitfall 3).
            raise SevdeskApiError(
                422,
                f"Invalid status {fields.get('status')!r}. Vouchers can only be saved with "
                "status 50 (draft) or 100 (open); use bookAmount to pay them",
            )
        credit_debit = fields.get("creditDebit")
        if credit_debit not in ("C", "D"):
            raise SevdeskApiError(422, f"Invalid value for creditDebit: {credit_debit!r} (expected 'C' or 'D')")
        voucher_type = fields.get("voucherType")
        if voucher_type not in ("VOU", "RV"):
            raise SevdeskApiError(422, f"Invalid value for voucherType: {voucher_type!r} (expected 'VOU' or 'RV')")

        tax_rule: int | None = None
        tax_type: str | None = None
        if self.bookkeeping_version == "2.0":
            tax_rule = _id_of(fields.get("taxRule"))
            if tax_rule is None:
                raise SevdeskApiError(422, "taxRule is required (sevdesk-Update 2.0)")
            if tax_rule not in REVENUE_TAX_RULES | EXPENSE_TAX_RULES:
                raise SevdeskApiError(422, f"Unknown taxRule {tax_rule}")
            if tax_rule in INVOICE_ONLY_TAX_RULES:
                # Rules 18-21 list "Usage in vouchers" as unsupported (docs §4, pitfall 10).
                raise SevdeskApiError(422, f"The tax rule {tax_rule} can not be used for vouchers; use an invoice")
            expected = REVENUE_TAX_RULES if credit_debit == "D" else EXPENSE_TAX_RULES
            if tax_rule not in expected:
                kind = "revenue (creditDebit D)" if credit_debit == "D" else "expense (creditDebit C)"
                raise SevdeskApiError(422, f"The tax rule {tax_rule} is not allowed for {kind} vouchers")
            # taxType is silently dropped in 2.0 (docs §4, pitfall 8).
        else:
            # 1.0 (sandbox decision): the legacy taxType is mandatory; a 2.0 payload (taxRule only) is refused.
            tax_type = fields.get("taxType")
            if tax_type not in TAX_TYPES_V1:
                raise SevdeskApiError(
                    422,
                    "taxType is required for bookkeeping system version 1.0 "
                    f"(one of {', '.join(sorted(TAX_TYPES_V1))}); taxRule is not supported",
                )

        supplier = _id_of(fields.get("supplier"))
        supplier_name = fields.get("supplierName")
        if fields.get("supplier") not in (None, "") and (supplier is None or supplier not in self.contacts):
            raise SevdeskApiError(422, f"The contact {fields.get('supplier')!r} given as supplier does not exist")
        if supplier is None and not (isinstance(supplier_name, str) and supplier_name.strip()):
            raise SevdeskApiError(422, "Either supplier or supplierName is required")

        voucher_date = (
            _parse_document_day(fields["voucherDate"], "voucherDate")
            if fields.get("voucherDate") not in (None, "")
            else _berlin_midnight(_to_berlin(datetime.now(UTC)).date())
        )
        currency = fields.get("currency") or "EUR"
        if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
            raise SevdeskApiError(422, f"Invalid value for currency: {currency!r}")
        exchange_rate: Decimal | None = None
        if currency != "EUR":
            if fields.get("propertyExchangeRate") in (None, ""):
                raise SevdeskApiError(422, f"A voucher in {currency} needs propertyExchangeRate")
            exchange_rate = _decimal(fields["propertyExchangeRate"], "propertyExchangeRate")
            if exchange_rate <= 0:
                raise SevdeskApiError(422, "propertyExchangeRate must be positive")

        def optional_day(name: str) -> str | None:
            value = fields.get(name)
            return None if value in (None, "") else _parse_document_day(value, name)

        delivery_date = optional_day("deliveryDate")
        delivery_until = optional_day("deliveryDateUntil")
        payment_deadline = optional_day("paymentDeadline")
        if (
            self.delivery_after_voucher_date == "reject"
            and delivery_date is not None
            and datetime.fromisoformat(delivery_date) > datetime.fromisoformat(voucher_date)
        ):
            # sevDesk's rule on invoices; played on vouchers only when the switch says so (a sandbox decision).
            raise SevdeskApiError(
                422,
                f"deliveryDate {delivery_date[:10]} must not lie after the voucherDate {voucher_date[:10]}",
            )
        description = fields.get("description")
        return {
            "status": status,
            "creditDebit": credit_debit,
            "voucherType": voucher_type,
            "taxRule": tax_rule,
            "taxType": tax_type,
            "supplier": supplier,
            "supplierName": supplier_name if isinstance(supplier_name, str) else None,
            "description": str(description) if description is not None else None,
            "voucherDate": voucher_date,
            # Without a deliveryDate sevDesk repeats the voucher date ([JRS] write_voucher_save_create.json).
            "deliveryDate": delivery_date or voucher_date,
            "deliveryDateUntil": delivery_until,
            "paymentDeadline": payment_deadline,
            "currency": currency,
            "propertyExchangeRate": exchange_rate,
            "costCentre": _id_of(fields.get("costCentre")),
        }

    def _validate_deletes(self, deletes_in: list[Any], existing: dict[str, Any] | None) -> list[int]:
        ids = []
        for item in deletes_in:
            pos_id = _id_of(item)
            pos = self.positions.get(pos_id) if pos_id is not None else None
            if pos is None or existing is None or pos["voucher"] != existing["id"]:
                raise SevdeskApiError(422, f"voucherPosDelete: no position {item!r} on this voucher")
            ids.append(pos["id"])
        return ids

    def _validate_position(
        self, pos: dict[str, Any], index: int, header: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        where = f"voucherPosSave[{index}]"
        if pos.get("objectName") != "VoucherPos":
            raise SevdeskApiError(422, f"{where}: objectName must be 'VoucherPos'")
        pos_id: int | None = None
        if pos.get("id") not in (None, "", 0):
            pos_id = _id_of(pos.get("id"))
            known = self.positions.get(pos_id) if pos_id is not None else None
            if known is None or existing is None or known["voucher"] != existing["id"]:
                raise SevdeskApiError(422, f"{where}: the position {pos.get('id')!r} does not belong to this voucher")
        tax_rate = _decimal(pos.get("taxRate"), f"{where}.taxRate")
        if tax_rate < 0:
            raise SevdeskApiError(422, f"{where}: taxRate must not be negative")
        if pos.get("net") is None:
            raise SevdeskApiError(422, f"{where}: net is required")
        net = _php_truthy(pos["net"])
        amount_field = "sumNet" if net else "sumGross"
        if pos.get(amount_field) in (None, ""):
            raise SevdeskApiError(
                422, f"{where}: {amount_field} is required for a position with net={str(net).lower()}"
            )
        amount = _decimal(pos[amount_field], f"{where}.{amount_field}")

        account_datev: int | None = None
        accounting_type: int | None = None
        if self.bookkeeping_version == "2.0":
            account_datev = _id_of(pos.get("accountDatev"))
            if account_datev is None:
                raise SevdeskApiError(422, f"{where}: accountDatev is required (sevdesk-Update 2.0)")
            self._check_guidance(where, account_datev, header, tax_rate)
        else:
            accounting_type = _id_of(pos.get("accountingType"))
            if accounting_type is None:
                raise SevdeskApiError(422, f"{where}: accountingType is required for bookkeeping system version 1.0")
        comment = pos.get("comment")
        return {
            "id": pos_id,
            "accountDatev": account_datev,
            "accountingType": accounting_type,
            "taxRate": tax_rate,
            "net": net,
            "amount": amount,
            "comment": str(comment) if comment is not None else None,
            "isAsset": _php_truthy(pos.get("isAsset", False)),
        }

    def _check_guidance(self, where: str, account_datev: int, header: dict[str, Any], tax_rate: Decimal) -> None:
        """Account x receipt type x tax rule x rate must be allowed by ReceiptGuidance (docs §4, pitfall 9)."""
        guide = next((g for g in self.guidance if int(g["accountDatevId"]) == account_datev), None)
        if guide is None:
            raise SevdeskApiError(422, f"{where}: accountDatev {account_datev} is unknown or can not be used")
        account = f"{guide['accountNumber']} ({guide['accountName']})"
        receipt_type = "REVENUE" if header["creditDebit"] == "D" else "EXPENSE"
        if receipt_type not in guide["allowedReceiptTypes"]:
            raise SevdeskApiError(422, f"{where}: account {account} can not be used for {receipt_type} vouchers")
        rule = next((r for r in guide["allowedTaxRules"] if int(r["id"]) == header["taxRule"]), None)
        if rule is None:
            raise SevdeskApiError(422, f"{where}: tax rule {header['taxRule']} is not allowed for account {account}")
        allowed = [TAX_RATE_NAMES[name] for name in rule["taxRates"] if name in TAX_RATE_NAMES]
        if tax_rate not in allowed:
            rates = ", ".join(_num(r) for r in allowed)
            raise SevdeskApiError(
                422,
                f"{where}: tax rate {_num(tax_rate)} is not allowed for account {account} "
                f"with tax rule {rule['name']} (allowed: {rates})",
            )

    def _attach_document(self, filename: str, voucher_id: int, now: str) -> dict[str, Any]:
        temp = self.temp_files[filename]
        document_id = self._allocate("Document")
        stem, _, extension = filename.rpartition(".")
        document = {
            "id": document_id,
            "voucher": voucher_id,
            "filename": filename,
            "stem": stem,
            "extension": extension,
            "size": temp["size"],
            "sha256": temp["sha256"],
            "mimeType": temp["mimeType"],
            "originalName": temp["originalName"],
            "create": now,
        }
        self.documents[document_id] = document
        return document

    # -- vouchers: rendering and reading ---------------------------------------------------------------------------
    def _render_voucher(self, v: dict[str, Any], answer: str = "read") -> dict[str, Any]:
        """A voucher in the keys, order and types of the recordings (sevdesk-rs_voucher.json, voucher_list.json,
        write_voucher_*.json).

        ``answer`` is "read" (GET, PUT), "created" (saveVoucher of a new voucher: the recording adds
        ``propertyCreationOrigin: null``) or "updated" (saveVoucher of an existing draft: ``propertyIsBookkeepingV1:
        null`` instead). Empty references (``supplier``, ``document``, ``costCentre``) are left out, as recorded.
        """
        out: dict[str, Any] = {
            "id": str(v["id"]),
            "objectName": "Voucher",
            "additionalInformation": None,
        }
        if answer == "created":
            out["propertyCreationOrigin"] = None
        elif answer == "updated":
            out["propertyIsBookkeepingV1"] = None
        out.update(
            {
                "create": v["create"],
                "update": v["update"],
                "sevClient": SEV_CLIENT,
                "createUser": SEV_USER,
                "voucherDate": v["voucherDate"],
            }
        )
        if v["supplier"] is not None:
            out["supplier"] = _ref(v["supplier"], "Contact")
        out["supplierName"] = v["supplierName"]
        out["description"] = v["description"]
        if v["document"] is not None:
            out["document"] = _ref(v["document"], "Document")
        foreign = v["propertyExchangeRate"] is not None
        out.update(
            {
                "resultDisdar": None,
                "payDate": v["payDate"],
                "status": str(v["status"]),
                "currency": v["currency"],
                "sumNet": _num(v["sumNet"]),
                "sumTax": _num(v["sumTax"]),
                "sumGross": _num(v["sumGross"]),
                "sumNetAccounting": _num(v["sumNet"]),
                "sumTaxAccounting": _num(v["sumTax"]),
                "sumGrossAccounting": _num(v["sumGross"]),
                "showNet": _flag(v["showNet"]),
                "paidAmount": _json_number(v["paidAmount"]),
                "taxType": v["taxType"],
                "creditDebit": v["creditDebit"],
                "hidden": "0",
                "voucherType": v["voucherType"],
                "recurringIntervall": None,
                "recurringInterval": None,
                "recurringStartDate": None,
                "recurringNextVoucher": None,
                "recurringLastVoucher": None,
                "recurringEndDate": None,
                "enshrined": None,
                "sendType": None,
                "inSource": None,
                "iban": None,
                "accountingSpecialCase": None,
                "paymentDeadline": v["paymentDeadline"],
                "tip": "0",
                "mileageRate": "0",
                "selectedForPaymentFile": "0",
                "supplierNameAtSave": None,
                "taxmaroStockAccount": None,
                "vatNumber": None,
                "deliveryDate": v["deliveryDate"],
                "deliveryDateUntil": v["deliveryDateUntil"],
            }
        )
        if foreign:
            # Not in the (EUR-only) recordings; the field the client sent (docs §11), echoed like sevDesk's input.
            out["propertyExchangeRate"] = _num(v["propertyExchangeRate"])
        out.update(
            {
                "sumDiscountNet": "0",
                "sumDiscountGross": "0",
                "sumNetForeignCurrency": _num(v["sumNetForeignCurrency"]) if foreign else "0",
                "sumTaxForeignCurrency": _num(v["sumTaxForeignCurrency"]) if foreign else "0",
                "sumGrossForeignCurrency": _num(v["sumGrossForeignCurrency"]) if foreign else "0",
                "sumDiscountNetForeignCurrency": "0",
                "sumDiscountGrossForeignCurrency": "0",
            }
        )
        if v["taxRule"] is not None:
            out["taxRule"] = _ref(v["taxRule"], "TaxRule")
        if v["costCentre"] is not None:
            out["costCentre"] = _ref(v["costCentre"], "CostCentre")
        return out

    def _render_position(self, p: dict[str, Any], saved_now: bool = False) -> dict[str, Any]:
        """A position as in sevdesk-rs_voucher_positions.json. In a saveVoucher answer (``saved_now``)
        ``cateringTip`` is ``null``; read back later it is ``"0"`` (write_voucher_save_*.json, voucher_positions.json).
        """
        foreign = self.vouchers.get(p["voucher"], {}).get("propertyExchangeRate") is not None
        out: dict[str, Any] = {
            "id": str(p["id"]),
            "objectName": "VoucherPos",
            "additionalInformation": None,
            "create": p["create"],
            "update": p["update"],
            "sevClient": SEV_CLIENT,
            "voucher": _ref(p["voucher"], "Voucher"),
            "taxRate": _num(p["taxRate"]),
            "sum": None,
            # A string flag like every scalar in the live API ([JRS] voucher_positions.json: "net": "1").
            "net": _flag(p["net"]),
            "isAsset": _flag(p["isAsset"]),
            "assetMemoValue": "0",
            "sumNet": _num(p["sumNet"]),
            "sumTax": _num(p["sumTax"]),
            "sumGross": _num(p["sumGross"]),
            "sumNetAccounting": _num(p["sumNet"]),
            "sumTaxAccounting": _num(p["sumTax"]),
            "sumGrossAccounting": _num(p["sumGross"]),
            "comment": p["comment"],
            "isGwg": "0",
            "cateringTaxRate": None,
            "cateringTip": None if saved_now else "0",
            "specialAccountingField1": None,
            "specialAccountingField2": None,
            "specialAccountingField3": None,
            "specialAccountingField4": None,
            "specialAccountingField5": None,
        }
        if p["accountDatev"] is not None:
            out["accountDatev"] = _ref(p["accountDatev"], "AccountDatev")
        if p["accountingType"] is not None:
            out["accountingType"] = _ref(p["accountingType"], "AccountingType")
        out.update(
            {
                "isPercentage": "1",
                "discountedValue": "0",
                "sumNetForeignCurrency": _num(p["sumNetForeignCurrency"]) if foreign else "0",
                "sumTaxForeignCurrency": _num(p["sumTaxForeignCurrency"]) if foreign else "0",
                "sumGrossForeignCurrency": _num(p["sumGrossForeignCurrency"]) if foreign else "0",
                "sumDiscountForeignCurrency": "0",
                "createNextPart": None,
            }
        )
        return out

    def _render_document(self, d: dict[str, Any]) -> dict[str, Any]:
        # Shape of the "document" in the [JRS] fixture write_voucher_save_update_release_attach.json.
        return {
            "id": str(d["id"]),
            "objectName": "Document",
            "additionalInformation": None,
            "create": d["create"],
            "update": d["create"],
            "documentNumber": None,
            "createUser": SEV_USER,
            "updateUser": SEV_USER,
            "mimeType": None,
            "description": None,
            "sevClient": SEV_CLIENT,
            "filename": d["stem"],
            "status": "50",
            "extension": d["extension"],
            "filesize": str(d["size"]),
            "contentHash": d["sha256"],
        }

    def _get_voucher(self, request: Request) -> Response:
        voucher = self.vouchers.get(int(request.params["id"]))
        if voucher is None:
            raise _not_found("Voucher", request.params["id"])
        return self._ok([self._render_voucher(voucher)])

    def _list_vouchers(self, request: Request) -> Response:
        rows = sorted(self.vouchers.values(), key=lambda v: v["id"])
        like = request.query_value("descriptionLike")
        if like:  # a SUBSTRING match (docs §8, pitfall 14)
            rows = [v for v in rows if like.lower() in (v["description"] or "").lower()]
        search = request.query_value("searchCommentOrDescription")
        if search:
            needle = search.lower()
            rows = [
                v
                for v in rows
                if needle in (v["description"] or "").lower()
                or any(
                    needle in (p["comment"] or "").lower() for p in self.positions.values() if p["voucher"] == v["id"]
                )
            ]
        for name in ("creditDebit", "voucherType"):
            wanted = request.query_value(name)
            if wanted:
                rows = [v for v in rows if v[name] == wanted]
        status = request.query_value("status")
        if status:
            rows = [v for v in rows if str(v["status"]) == status]
        contact = _id_of(request.query_value("contact[id]"))
        if contact is not None:
            rows = [v for v in rows if v["supplier"] == contact]
        for name in ("startDate", "endDate"):
            bound_text = request.query_value(name)
            if bound_text is None or bound_text == "":
                continue
            if not _UNIX.match(bound_text):
                # ISO dates give 200 and an empty list (docs §8, pitfall 15, [Blume1805] five runs).
                return self._page(request, [])
            bound = float(bound_text)
            sign = 1 if name == "startDate" else -1  # startDate: on or after; endDate: on or before
            rows = [v for v in rows if sign * (datetime.fromisoformat(v["voucherDate"]).timestamp() - bound) >= 0]
        # embed=voucherPos and every other unknown filter are ignored silently (docs §1, §3).
        return self._page(request, [self._render_voucher(v) for v in rows])

    def _list_voucher_positions(self, request: Request) -> Response:
        rows = sorted(self.positions.values(), key=lambda p: p["id"])
        voucher_id = _id_of(request.query_value("voucher[id]"))
        if voucher_id is not None:
            rows = [p for p in rows if p["voucher"] == voucher_id]
        return self._page(request, [self._render_position(p) for p in rows])


def _sniff_mime(data: bytes, declared: str) -> str:
    if data.startswith(b"%PDF"):
        return "application/pdf"
    if data.lstrip().startswith(b"<?xml") or data.lstrip().startswith(b"<"):
        return "application/xml"
    return declared or "application/octet-stream"


def _position_sums(pos: dict[str, Any], exchange_rate: Decimal | None) -> dict[str, Decimal]:
    """sevDesk computes the rest of a position from sumNet (net=true) or sumGross (net=false); sumTax is read-only.

    A foreign-currency voucher keeps the sent amounts in ``sum*ForeignCurrency`` and stores EUR (amount x
    propertyExchangeRate) in ``sum*`` (docs §11, numtide commit 247b20be).
    """
    rate = pos["taxRate"]
    amount = _money(pos["amount"])
    if pos["net"]:
        net = amount
        tax = _money(net * rate / 100)
        gross = net + tax
    else:
        gross = amount
        net = _money(gross * 100 / (100 + rate))
        tax = gross - net
    sums = {"sumNetForeignCurrency": net, "sumTaxForeignCurrency": tax, "sumGrossForeignCurrency": gross}
    if exchange_rate is not None:
        gross_eur = _money(gross * exchange_rate)
        net_eur = _money(net * exchange_rate)
        sums.update(sumNet=net_eur, sumTax=gross_eur - net_eur, sumGross=gross_eur)
    else:
        sums.update(sumNet=net, sumTax=tax, sumGross=gross)
    return sums
