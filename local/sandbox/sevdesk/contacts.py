"""Contacts: contacts, contact addresses, communication ways and customer numbers."""

from __future__ import annotations

from typing import Any

from local.sandbox.base import Request, Response
from local.sandbox.sevdesk.core import SevdeskCore
from local.sandbox.sevdesk.wire import (
    SEV_CLIENT,
    SevdeskApiError,
    _flag,
    _id_of,
    _not_found,
    _now_iso,
    _php_truthy,
    _ref,
)


def _contact_display_name(contacts: dict[int, dict[str, Any]], contact_id: int | None) -> str | None:
    """The name a contact is shown by: the organisation's name, else the person's first and family name."""
    contact = contacts.get(contact_id) if contact_id is not None else None
    if contact is None:
        return None
    if contact.get("name"):
        return str(contact["name"])
    return " ".join(str(contact[k]) for k in ("surename", "familyname") if contact.get(k)) or None


class ContactsMixin(SevdeskCore):
    """``/Contact`` (and its customer-number factory and mapper), ``/ContactAddress`` and ``/CommunicationWay``."""

    def _render_contact(self, c: dict[str, Any]) -> dict[str, Any]:
        """A contact in the keys, order and types of sevdesk-rs_contact.json and write_contact_create.json: every
        field is present, ``null`` when unset (an empty string counts as unset); ``parent`` only when set."""

        def text(key: str) -> str | None:
            value = c.get(key)
            return None if value in (None, "") else str(value)

        def flag(key: str, default: bool) -> str:
            return _flag(_php_truthy(c.get(key, default)))

        out: dict[str, Any] = {
            "id": str(c["id"]),
            "objectName": "Contact",
            "additionalInformation": None,
            "create": c["create"],
            "update": c["update"],
            "name": text("name"),
            "status": str(c.get("status") or 100),
            "customerNumber": text("customerNumber"),
            "surename": text("surename"),
            "familyname": text("familyname"),
            "titel": text("titel"),
            "category": _ref(_id_of(c.get("category")), "Category"),
            "description": text("description"),
            "academicTitle": text("academicTitle"),
            "gender": text("gender"),
            "sevClient": SEV_CLIENT,
            "name2": text("name2"),
            "birthday": text("birthday"),
            "vatNumber": text("vatNumber"),
            "bankAccount": text("bankAccount"),
            "bankNumber": text("bankNumber"),
            "mandateReference": text("mandateReference"),
            "defaultCashbackTime": text("defaultCashbackTime"),
            "defaultCashbackPercent": text("defaultCashbackPercent"),
            "defaultTimeToPay": text("defaultTimeToPay"),
            "taxNumber": text("taxNumber"),
            "taxOffice": text("taxOffice"),
            "exemptVat": flag("exemptVat", False),
            "taxType": text("taxType"),
            "defaultDiscountAmount": text("defaultDiscountAmount"),
            "defaultDiscountPercentage": flag("defaultDiscountPercentage", True),
            "buyerReference": text("buyerReference"),
            "governmentAgency": flag("governmentAgency", False),
            "defaultShowVat": flag("defaultShowVat", True),
        }
        if out["category"] is None:
            del out["category"]  # not reachable through the API (category is required); seeds may omit it
        if _id_of(c.get("parent")) is not None:
            out["parent"] = _ref(_id_of(c.get("parent")), "Contact")
        return out

    def _list_contacts(self, request: Request) -> Response:
        rows = sorted(self.contacts.values(), key=lambda c: c["id"])
        if request.query_value("depth") != "1":
            # Without depth=1 only organisations come back (spec, docs §7, pitfall 19).
            rows = [c for c in rows if c.get("name")]
        number = request.query_value("customerNumber")
        if number is not None and number != "":
            rows = [c for c in rows if str(c.get("customerNumber") or "") == number]  # exact (docs §7)
        name = request.query_value("name")
        if name:
            needle = name.lower()
            rows = [
                c
                for c in rows
                if any(needle in str(c.get(k) or "").lower() for k in ("name", "surename", "familyname"))
            ]
        category = _id_of(request.query_value("category[id]"))
        if category is not None:
            rows = [c for c in rows if _id_of(c.get("category")) == category]
        return self._page(request, [self._render_contact(c) for c in rows])

    def _get_contact(self, request: Request) -> Response:
        contact = self.contacts.get(int(request.params["id"]))
        if contact is None:
            raise _not_found("Contact", request.params["id"])
        return self._ok([self._render_contact(contact)])

    def _create_contact(self, request: Request) -> Response:
        body = self._body(request)
        if _id_of(body.get("category")) is None:
            raise SevdeskApiError(422, "category is required")  # the only required field of Model_Contact
        if not any(isinstance(body.get(k), str) and body[k].strip() for k in ("name", "surename", "familyname")):
            raise SevdeskApiError(422, "A contact needs a name (organisation) or surename/familyname (person)")
        parent = _id_of(body.get("parent"))
        if parent is not None and parent not in self.contacts:
            raise SevdeskApiError(422, f"The parent contact {parent} does not exist")
        contact_id = self._allocate("Contact")
        now = _now_iso()
        self.contacts[contact_id] = {**body, "id": contact_id, "create": now, "update": now}
        return self._ok(self._render_contact(self.contacts[contact_id]), status=201)

    def _used_customer_numbers(self) -> set[str]:
        return {str(c["customerNumber"]) for c in self.contacts.values() if c.get("customerNumber")}

    def _next_customer_number(self, request: Request) -> Response:
        numeric = [int(n) for n in self._used_customer_numbers() if n.isdigit()]
        return self._ok(str(max(numeric, default=999) + 1))

    def _check_customer_number(self, request: Request) -> Response:
        number = request.query_value("customerNumber") or ""
        return self._ok(number not in self._used_customer_numbers())

    def _contact_ref(self, body: dict[str, Any]) -> int:
        contact_id = _id_of(body.get("contact"))
        if contact_id is None:
            raise SevdeskApiError(422, "contact is required")
        if contact_id not in self.contacts:
            raise _not_found("Contact", contact_id)
        return contact_id

    def _render_address(self, a: dict[str, Any], expand_contact: bool = False) -> dict[str, Any]:
        """An address as in sevdesk-rs_contact_address_list.json (``contact`` a reference) or, answering the POST, as
        in write_contact_address_create.json (``contact`` fully expanded). No name2/name3/name4 keys: the recordings
        have none, although the spec lists them."""
        contact = self.contacts.get(a["contact"]) if expand_contact else None
        return {
            "id": str(a["id"]),
            "objectName": "ContactAddress",
            "additionalInformation": None,
            "create": a["create"],
            "update": a["update"],
            "contact": self._render_contact(contact) if contact is not None else _ref(a["contact"], "Contact"),
            "street": a.get("street"),
            "zip": a.get("zip"),
            "city": a.get("city"),
            "country": _ref(a["country"], "StaticCountry"),
            "category": _ref(a.get("category"), "Category"),
            "name": a.get("name"),
            "sevClient": SEV_CLIENT,
        }

    def _list_contact_addresses(self, request: Request) -> Response:
        rows = sorted(self.addresses.values(), key=lambda a: a["id"])
        contact_id = _id_of(request.query_value("contact[id]"))
        if contact_id is not None:
            rows = [a for a in rows if a["contact"] == contact_id]
        return self._page(request, [self._render_address(a) for a in rows])

    def _create_contact_address(self, request: Request) -> Response:
        body = self._body(request)
        contact_id = self._contact_ref(body)
        country = _id_of(body.get("country"))
        if country is None:
            raise SevdeskApiError(422, "country is required")
        if not any(int(c["id"]) == country for c in self.countries):
            raise _not_found("StaticCountry", country)
        category = _id_of(body.get("category"))
        if category is not None and not any(int(c["id"]) == category for c in self.categories):
            raise _not_found("Category", category)
        address_id = self._allocate("ContactAddress")
        now = _now_iso()
        self.addresses[address_id] = {
            **{k: body.get(k) for k in ("street", "zip", "city", "name", "name2", "name3", "name4")},
            "id": address_id,
            "contact": contact_id,
            "country": country,
            "category": category,
            "create": now,
            "update": now,
        }
        return self._ok(self._render_address(self.addresses[address_id], expand_contact=True), status=201)

    def _render_communication_way(self, w: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(w["id"]),
            "objectName": "CommunicationWay",
            "additionalInformation": None,
            "create": w["create"],
            "update": w["update"],
            "contact": _ref(w["contact"], "Contact"),
            "type": w["type"],
            "value": w["value"],
            "key": _ref(w["key"], "CommunicationWayKey"),
            "main": _flag(w["main"]),
            "sevClient": SEV_CLIENT,
        }

    def _list_communication_ways(self, request: Request) -> Response:
        rows = sorted(self.communication_ways.values(), key=lambda w: w["id"])
        contact_id = _id_of(request.query_value("contact[id]"))
        if contact_id is not None:
            rows = [w for w in rows if w["contact"] == contact_id]
        way_type = request.query_value("type")
        if way_type:
            rows = [w for w in rows if w["type"] == way_type]
        main = request.query_value("main")
        if main in ("0", "1", "true", "false"):
            rows = [w for w in rows if w["main"] == (main in ("1", "true"))]
        return self._page(request, [self._render_communication_way(w) for w in rows])

    def _create_communication_way(self, request: Request) -> Response:
        body = self._body(request)
        contact_id = self._contact_ref(body)
        way_type = body.get("type")
        if way_type not in ("EMAIL", "PHONE", "WEB", "MOBILE"):
            raise SevdeskApiError(422, f"Invalid value for type: {way_type!r}")
        value = body.get("value")
        if not isinstance(value, str) or not value.strip():
            raise SevdeskApiError(422, "value is required")
        key = _id_of(body.get("key"))
        if key is None or key not in range(1, 9):  # keys 1-8 per docs §7
            raise SevdeskApiError(422, "key is required (a CommunicationWayKey 1-8)")
        way_id = self._allocate("CommunicationWay")
        now = _now_iso()
        self.communication_ways[way_id] = {
            "id": way_id,
            "contact": contact_id,
            "type": way_type,
            "value": value.strip(),
            "key": key,
            "main": _php_truthy(body.get("main", False)),
            "create": now,
            "update": now,
        }
        return self._ok(self._render_communication_way(self.communication_ways[way_id]), status=201)
