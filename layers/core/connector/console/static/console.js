// The web console: one static page that calls the connector's JSON API with the bearer token the user typed.
// Safety rules (docs/console.md): the token lives in sessionStorage only (this tab), is sent as the Authorization
// header and nowhere else; every value from Billbee, sevDesk or the API is written with textContent (the el()
// helper below), never parsed as HTML; the Content-Security-Policy forbids inline script.
"use strict";

(function () {
  const TOKEN_KEY = "connector.apiToken";
  const LANG_KEY = "connector.lang";
  const STATES = ["NEEDS_ATTENTION", "FAILED", "PENDING", "EXPORTING", "EXPORTED", "SKIPPED", "HANDLED"];
  const RETRYABLE = ["FAILED", "NEEDS_ATTENTION"];
  const HANDLEABLE = ["FAILED", "NEEDS_ATTENTION", "SKIPPED"];
  const MAX_IDS_PER_REQUEST = 500;
  const MAX_RESENDS = 40;
  // sevDesk's web app shows a voucher at this address (taken from the app's own links; not part of the API).
  const SEVDESK_VOUCHER_URL = "https://my.sevdesk.de/fi/detail/type/VOU/id/";

  let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "de";
  let renderSerial = 0;

  // -- texts -----------------------------------------------------------------------------------------------------
  function t(key, values) {
    const texts = window.CONSOLE_TEXTS[lang] || window.CONSOLE_TEXTS.de;
    let text = texts[key] !== undefined ? texts[key] : (window.CONSOLE_TEXTS.de[key] || key);
    if (values) {
      text = text.replace(/\{(\w+)\}/g, (whole, name) => (values[name] === undefined ? whole : String(values[name])));
    }
    return text;
  }

  // -- DOM: elements from text only ------------------------------------------------------------------------------
  // el("td", {class: "x"}, "text", childNode, ...): strings become text nodes, so data is never read as HTML.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) {
        node.addEventListener(name.slice(2), value);
      } else if (name === "text") {
        node.textContent = String(value);
      } else {
        node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function app() {
    return document.getElementById("app");
  }

  function say(message, kind) {
    const status = document.getElementById("status");
    status.className = kind || "";
    status.textContent = message || "";
  }

  function errorBox(message) {
    return el("p", {class: "error", role: "alert"}, message);
  }

  function formatTime(value) {
    if (!value) return t("none");
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (isNaN(date.getTime())) return String(value);
    return date.toLocaleString(lang === "de" ? "de-DE" : "en-GB");
  }

  function locale() {
    return lang === "de" ? "de-DE" : "en-GB";
  }

  function formatCount(value) {
    return new Intl.NumberFormat(locale(), {maximumFractionDigits: 0}).format(value);
  }

  // An amount as the API sends it ("1234.50", never a float) in the reader's notation, digit by digit: no rounding.
  function formatMoney(value) {
    if (value === null || value === undefined) return t("none");
    const match = /^(-?)(\d+)\.(\d{2})$/.exec(String(value));
    if (!match) return String(value);
    const [group, decimal] = lang === "de" ? [".", ","] : [",", "."];
    return match[1] + match[2].replace(/\B(?=(\d{3})+(?!\d))/g, group) + decimal + match[3];
  }

  // A time left for people: "unter einer Minute", "etwa 25 Min.", "etwa 3 Std. 20 Min.", "etwa 2 Tage 5 Std.".
  function formatDuration(seconds) {
    if (seconds < 60) return t("durLessThanMinute");
    const minutes = Math.round(seconds / 60);
    if (minutes < 90) return t("durMinutes", {m: minutes});
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return t("durHours", {h: hours, m: minutes % 60});
    return t("durDays", {d: Math.floor(hours / 24), h: hours % 24});
  }

  // -- the API ---------------------------------------------------------------------------------------------------
  class ApiFailure extends Error {
    constructor(status, body, message) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  // One request with the bearer header; a refused token returns to the login, any other error status throws with
  // the API's error text. The caller reads the body (JSON, or a Blob for the CSV download).
  async function send(method, path, options) {
    const opts = options || {};
    const headers = {"Authorization": "Bearer " + token(), "Accept": opts.accept || "application/json"};
    const init = {method: method, headers: headers, cache: "no-store", credentials: "omit", redirect: "error",
                  signal: opts.signal};
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (exc) {
      if (exc.name === "AbortError") throw exc;
      throw new ApiFailure(0, null, t("errorNetwork", {detail: exc.message}));
    }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(t("loginWrong"));
      throw new ApiFailure(401, null, t("loginWrong"));
    }
    if (!response.ok) {
      let answer = null;
      try {
        answer = await response.json();
      } catch (exc) {
        answer = null;
      }
      const detail = answer && answer.error ? answer.error : response.statusText;
      throw new ApiFailure(response.status, answer, t("errorApi", {status: response.status, detail: detail}));
    }
    return response;
  }

  async function api(method, path, body) {
    const response = await send(method, path, {body: body});
    try {
      return await response.json();
    } catch (exc) {
      return null;
    }
  }

  function connectionPath(connectionId) {
    return "/connections/" + encodeURIComponent(connectionId);
  }

  // -- login -----------------------------------------------------------------------------------------------------
  function showLogin(message) {
    document.getElementById("logout").hidden = true;
    clear(document.getElementById("crumbs"));
    const input = el("input", {id: "token", type: "password", name: "token", autocomplete: "off", required: true,
                               spellcheck: "false", "aria-describedby": "login-help"});
    const problem = el("p", {id: "login-problem", class: "error", role: "alert"}, message || "");
    if (!message) problem.hidden = true;
    const form = el("form", {id: "login", class: "card narrow", onsubmit: async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) {
        problem.hidden = false;
        problem.textContent = t("loginEmpty");
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      input.value = "";
      try {
        await api("GET", "/connections");
      } catch (exc) {
        if (exc.status !== 401) {
          problem.hidden = false;
          problem.textContent = exc.message;
        }
        return;
      }
      if (!location.hash || location.hash === "#/login") location.hash = "#/";
      render();
    }},
      el("h1", {}, t("loginTitle")),
      el("p", {id: "login-help"}, t("loginHelp")),
      el("p", {class: "hint"}, t("loginWhere")),
      problem,
      el("label", {for: "token"}, t("tokenLabel")),
      input,
      el("button", {type: "submit", id: "login-button"}, t("loginButton")));
    clear(app()).append(form);
    input.focus();
  }

  // -- navigation ------------------------------------------------------------------------------------------------
  function crumbs(connectionId, active) {
    const nav = clear(document.getElementById("crumbs"));
    const items = [el("a", {href: "#/"}, t("connections"))];
    if (connectionId) {
      const base = "#/c/" + encodeURIComponent(connectionId);
      for (const [key, target] of [["tabOrders", "/orders"], ["tabExport", "/export"], ["tabSettings", "/settings"],
                                   ["tabWhy", "/why"], ["tabReconciliation", "/reconciliation"]]) {
        items.push(el("a", {href: base + target, "aria-current": key === active ? "page" : null,
                            "data-tab": target.slice(1)}, t(key)));
      }
    }
    nav.append(...items);
  }

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent);
    if (parts[0] === "new") return {page: "new"};
    if (parts[0] !== "c" || parts.length < 2) return {page: "connections"};
    const route = {connectionId: parts[1], page: parts[2] || "orders"};
    if (route.page === "orders") route.state = parts[3] || null;
    if (route.page === "order") route.orderId = parts[3];
    if (route.page === "why") route.orderId = parts[3] || null;
    if (route.page === "reconciliation") {
      route.from = parts[3] || null;
      route.to = parts[4] || null;
    }
    return route;
  }

  async function render() {
    const serial = ++renderSerial;
    applyLanguage();
    if (!token()) {
      showLogin();
      return;
    }
    document.getElementById("logout").hidden = false;
    say("");
    const route = parseRoute();
    const page = {connections: connectionsPage, orders: ordersPage, order: orderPage, export: exportPage,
                  settings: settingsPage, why: whyPage, reconciliation: reconciliationPage,
                  new: newConnectionPage}[route.page] || connectionsPage;
    const container = el("section", {class: "page", "data-page": route.page});
    container.append(el("p", {class: "loading"}, t("loading")));
    clear(app()).append(container);
    try {
      await page(route, container, () => serial === renderSerial);
    } catch (exc) {
      if (exc instanceof ApiFailure && exc.status === 401) return;
      if (serial !== renderSerial) return;
      clear(container).append(errorBox(exc.message));
    }
  }

  // -- page 1: connections ---------------------------------------------------------------------------------------
  function statusCell(status) {
    const ok = status.state === "OK";
    return el("td", {class: "status"},
      el("span", {class: ok ? "badge ok" : "badge bad", "data-state": status.state}, t("status" + status.state)),
      !ok && status.reason ? el("span", {class: "reason"}, " " + status.reason) : null,
      status.since ? el("span", {class: "since"}, " (" + t("since", {time: formatTime(status.since)}) + ")") : null);
  }

  function pollText(lastPoll) {
    if (!lastPoll) return t("never");
    const summary = lastPoll.summary || {};
    const when = formatTime(lastPoll.polledAt);
    if (summary.error) return when + ": " + t("pollError", {error: summary.error});
    return when + ": " + t("pollSummary", {status: summary.status || "OK", listed: summary.listed || 0,
                                           queued: summary.queued || 0, skipped: summary.skipped || 0});
  }

  function countsList(connectionId, counts) {
    const list = el("ul", {class: "counts"});
    for (const state of STATES) {
      const count = counts[state] || 0;
      if (!count) continue;
      list.append(el("li", {},
        el("a", {href: "#/c/" + encodeURIComponent(connectionId) + "/orders/" + state, "data-count": state},
          t("state_" + state) + ": " + count)));
    }
    if (!list.firstChild) list.append(el("li", {}, t("noOrders")));
    return list;
  }

  // Where the exports stand (GET /connections/{id} ``progress``, pipeline/progress.py): four figures, and while a
  // listing continues over several polls or work is queued a line with what is listed, what is left and when it
  // will be done; "done" once nothing is left. Each figure carries the API's value in data-value.
  function figure(name, value, text) {
    return el("span", {class: "figure", "data-progress": name, "data-value": value === null ? "" : String(value)},
              text);
  }

  // A text with "{n}" where a node goes: the node stays an element (its data-value), the words around it text.
  function withNode(key, node) {
    const [before, after] = t(key).split("{n}");
    return [before, node, after === undefined ? "" : after];
  }

  function progressLine(progress) {
    if (progress.done) {
      return el("p", {class: "progress-line ok-text", "data-line": "done"}, t("progressDone"));
    }
    const parts = [];
    if (!progress.listingComplete) {
      parts.push(withNode("progressListed", figure("ordersListed", progress.ordersListed,
                                                   formatCount(progress.ordersListed || 0))));
      if (progress.ordersLeftToList !== null) {
        parts.push(withNode("progressLeftToList", figure("ordersLeftToList", progress.ordersLeftToList,
                                                         formatCount(progress.ordersLeftToList))));
      }
    } else {
      parts.push([t("progressListingComplete")]);
    }
    if (progress.exportsPerHour === null) {
      parts.push([el("span", {"data-progress": "noRate"}, t("progressNoRate"))]);
    } else {
      parts.push(withNode("progressRate", figure("exportsPerHour", progress.exportsPerHour,
                                                 formatCount(Math.round(progress.exportsPerHour)))));
      if (progress.estimatedSecondsLeft !== null) {
        parts.push(withNode("progressLeft", figure("estimatedSecondsLeft", progress.estimatedSecondsLeft,
                                                   formatDuration(progress.estimatedSecondsLeft))));
      }
    }
    const line = el("p", {class: "progress-line", "data-line": "running"});
    parts.forEach((part, index) => line.append(...(index ? [" · "] : []), ...part));
    return line;
  }

  function progressBlock(progress) {
    if (!progress) return el("div", {class: "progress"}, t("none"));
    const figures = el("p", {class: "figures"});
    [["exported", "progressExported"], ["queued", "progressQueued"], ["failed", "progressFailed"],
     ["waiting", "progressWaiting"]].forEach(([name, key], index) => {
      if (index) figures.append(" · ");
      figures.append(...withNode(key, figure(name, progress[name], formatCount(progress[name]))));
    });
    return el("div", {class: "progress"}, figures, progressLine(progress));
  }

  async function connectionsPage(route, container, current) {
    crumbs(null, null);
    const listed = await api("GET", "/connections");
    const details = await Promise.all(listed.connections.map(
      (c) => api("GET", connectionPath(c.connectionId)).catch((exc) => ({failure: exc.message}))));
    if (!current()) return;
    clear(container).append(el("h1", {}, t("connections")),
      el("p", {}, el("a", {href: "#/new", id: "new-connection", class: "button"}, t("newTitle"))));
    if (!listed.connections.length) {
      container.append(el("p", {class: "empty"}, t("noConnections")));
      return;
    }
    const body = el("tbody");
    listed.connections.forEach((summary, index) => {
      const detail = details[index];
      const link = "#/c/" + encodeURIComponent(summary.connectionId) + "/orders";
      body.append(el("tr", {"data-connection": summary.connectionId},
        el("td", {}, el("a", {href: link}, summary.name)),
        el("td", {}, el("code", {}, summary.connectionId)),
        el("td", {}, summary.enabled ? t("yes") : t("no")),
        statusCell(summary.status),
        el("td", {class: "poll"}, detail.failure ? detail.failure : pollText(detail.lastPoll)),
        el("td", {}, detail.failure ? t("none") : countsList(summary.connectionId, detail.counts || {})),
        el("td", {class: "export-progress"}, detail.failure ? t("none") : progressBlock(detail.progress))));
    });
    container.append(el("table", {class: "connections"},
      el("thead", {}, el("tr", {}, ["colName", "colId", "colEnabled", "colStatus", "colLastPoll", "colCounts",
                                       "colProgress"]
        .map((key) => el("th", {scope: "col"}, t(key))))),
      body));
  }

  // -- page 2: orders --------------------------------------------------------------------------------------------
  function orderLink(connectionId, orderId) {
    return "#/c/" + encodeURIComponent(connectionId) + "/order/" + encodeURIComponent(orderId);
  }

  function orderRow(connectionId, order) {
    return el("tr", {"data-order": order.orderId},
      el("td", {}, el("a", {href: orderLink(connectionId, order.orderId)}, String(order.orderId))),
      el("td", {}, order.invoiceNumber || t("none")),
      el("td", {}, order.voucherId || t("none")),
      el("td", {}, String(order.attempts)),
      el("td", {class: "reason"}, order.reason || order.lastError || t("none")),
      el("td", {}, formatTime(order.updatedAt)));
  }

  async function ordersPage(route, container, current) {
    const connectionId = route.connectionId;
    crumbs(connectionId, "tabOrders");
    const view = await api("GET", connectionPath(connectionId));
    if (!current()) return;
    const counts = view.counts || {};
    const state = route.state && STATES.includes(route.state) ? route.state
      : (STATES.find((s) => counts[s]) || "EXPORTED");
    clear(container).append(el("h1", {}, view.connection.name, " · ", t("tabOrders")),
      el("section", {class: "card export-progress", "aria-label": t("colProgress")},
        el("h2", {}, t("colProgress")), progressBlock(view.progress)));
    const tabs = el("nav", {class: "states", "aria-label": t("fieldState")});
    for (const name of STATES) {
      tabs.append(el("a", {href: "#/c/" + encodeURIComponent(connectionId) + "/orders/" + name,
                           "aria-current": name === state ? "page" : null, "data-state": name},
        t("state_" + name) + " (" + (counts[name] || 0) + ")"));
    }
    const search = el("input", {id: "search", type: "search", autocomplete: "off"});
    const message = el("p", {class: "hint", id: "search-message", role: "status"});
    const body = el("tbody");
    const more = el("button", {type: "button", id: "more", hidden: true}, t("more"));
    const table = el("table", {class: "orders", "data-state": state},
      el("thead", {}, el("tr", {}, ["colOrder", "colInvoice", "colVoucher", "colAttempts", "colReason", "colUpdated"]
        .map((key) => el("th", {scope: "col"}, t(key))))),
      body);
    const loaded = [];
    let next = null;

    function show() {
      const query = search.value.trim().toLowerCase();
      clear(body);
      const rows = loaded.filter((o) => !query || String(o.orderId).includes(query)
        || String(o.invoiceNumber || "").toLowerCase().includes(query));
      rows.forEach((o) => body.append(orderRow(connectionId, o)));
      message.textContent = !loaded.length ? t("noOrders") : (rows.length ? "" : t("searchNone", {query: query}));
      more.hidden = !next;
    }

    async function load() {
      let path = connectionPath(connectionId) + "/orders?limit=200&state=" + encodeURIComponent(state);
      if (next) path += "&next=" + encodeURIComponent(next);
      const page = await api("GET", path);
      loaded.push(...page.orders);
      next = page.next;
      show();
    }

    const form = el("form", {class: "search", role: "search", onsubmit: async (event) => {
      event.preventDefault();
      show();
      const query = search.value.trim();
      // An order id not on the loaded pages (or in another state): ask for its record directly.
      if (/^\d{1,19}$/.test(query) && !body.firstChild) {
        try {
          const record = await api("GET", connectionPath(connectionId) + "/orders/" + query);
          location.hash = orderLink(connectionId, record.orderId);
        } catch (exc) {
          if (exc.status !== 404) message.textContent = exc.message;
        }
      }
    }},
      el("label", {for: "search"}, t("searchLabel")), search, el("button", {type: "submit"}, t("searchButton")));
    search.addEventListener("input", show);
    more.addEventListener("click", () => load().catch((exc) => { message.textContent = exc.message; }));
    container.append(tabs, form, message, table, more);
    await load();
  }

  function field(dl, key, ...value) {
    dl.append(el("dt", {}, t(key)), el("dd", {"data-field": key}, ...value));
  }

  function stepsList(order) {
    const bookings = Object.keys(order.bookings || {});
    const steps = [
      ["stepContact", order.contactId ? t("done") + " (" + order.contactId + ")" : t("notYet")],
      ["stepFile", order.fileName ? t("done") + " (" + order.fileName + ")" : t("notYet")],
      ["stepVoucher", order.voucherId ? t("done") + " (" + order.voucherId + ")" : t("notYet")],
      ["stepBookings", bookings.length ? t("done") + " (" + bookings.length + ")" : t("notYet")],
      ["stepTag", order.tagged ? t("done") : (order.setTag ? t("notYet") : t("notWanted"))],
    ];
    return el("ol", {class: "steps"}, steps.map(([key, value]) => el("li", {}, t(key) + ": " + value)));
  }

  function bookingsList(bookings) {
    const keys = Object.keys(bookings || {});
    if (!keys.length) return t("none");
    return el("ul", {}, keys.map((key) => {
      const b = bookings[key] || {};
      const parts = [key];
      if (b.amount !== undefined) parts.push(String(b.amount));
      if (b.checkAccountId !== undefined) parts.push("#" + b.checkAccountId);
      if (b.account !== undefined) parts.push("#" + b.account);
      return el("li", {}, parts.join(" · "));
    }));
  }

  async function orderPage(route, container, current) {
    const connectionId = route.connectionId;
    crumbs(connectionId, "tabOrders");
    const path = connectionPath(connectionId) + "/orders/" + encodeURIComponent(route.orderId);
    const order = await api("GET", path);
    if (!current()) return;
    clear(container);
    const dl = el("dl", {class: "record"});
    field(dl, "fieldState", el("span", {class: "badge state", "data-state": order.state}, t("state_" + order.state)));
    field(dl, "fieldInvoice", order.invoiceNumber || t("none"));
    field(dl, "fieldVoucher", order.voucherId
      ? el("a", {href: SEVDESK_VOUCHER_URL + encodeURIComponent(order.voucherId), target: "_blank",
                 rel: "noopener noreferrer"}, t("voucherLink", {id: order.voucherId}))
      : t("none"));
    if (order.reason) field(dl, "fieldReason", order.reason);
    if (order.lastError) field(dl, "fieldLastError", order.lastError);
    field(dl, "fieldAttempts", String(order.attempts));
    field(dl, "fieldBookings", bookingsList(order.bookings));
    if (order.notes && order.notes.length) field(dl, "fieldNotes", el("ul", {}, order.notes.map((n) => el("li", {}, n))));
    field(dl, "fieldOrigin", order.origin);
    if (order.handled) {
      field(dl, "fieldHandled", [order.handled.by, order.handled.at, order.handled.note].filter(Boolean).join(" · "));
    }
    field(dl, "fieldCreated", formatTime(order.createdAt));
    field(dl, "fieldUpdated", formatTime(order.updatedAt));
    container.append(el("h1", {}, t("orderTitle", {id: order.orderId})), dl,
      el("h2", {}, t("steps")), stepsList(order));
    if (RETRYABLE.includes(order.state)) {
      const outcome = el("p", {id: "retry-outcome", role: "status"});
      const button = el("button", {type: "button", id: "retry", onclick: async () => {
        button.disabled = true;
        try {
          await api("POST", path + "/retry");
          outcome.className = "ok";
          outcome.textContent = t("retryDone");
          button.hidden = true;
        } catch (exc) {
          outcome.className = "error";
          outcome.textContent = exc.message;
          button.disabled = false;
        }
      }}, t("retry"));
      container.append(el("div", {class: "actions"}, button, el("span", {class: "hint"}, " " + t("retryHelp"))),
        outcome);
    }
    if (HANDLEABLE.includes(order.state)) container.append(handledForm(path));
    container.append(el("p", {}, el("a", {href: "#/c/" + encodeURIComponent(connectionId) + "/orders/" + order.state},
      t("backToList"))));
  }

  // "Booked by hand": the bookkeeper booked the order in sevDesk without the connector; it stops coming back.
  function handledForm(path) {
    const by = el("input", {type: "text", id: "handled-by", autocomplete: "name", maxlength: 100});
    const note = el("input", {type: "text", id: "handled-note", maxlength: 1000});
    const outcome = el("p", {id: "handled-outcome", role: "status"});
    const button = el("button", {type: "submit", id: "handled-button"}, t("handledButton"));
    const form = el("form", {class: "card", id: "handled-form", novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      if (!by.value.trim() || !note.value.trim()) {
        outcome.className = "error";
        outcome.textContent = t("handledMissing");
        return;
      }
      button.disabled = true;
      try {
        await api("POST", path + "/handled", {by: by.value.trim(), note: note.value.trim()});
        render();
      } catch (exc) {
        outcome.className = "error";
        outcome.textContent = exc.message;
        button.disabled = false;
      }
    }},
      el("h2", {}, t("handledTitle")), el("p", {class: "hint"}, t("handledHelp")),
      el("label", {for: "handled-by"}, t("handledBy")), by,
      el("label", {for: "handled-note"}, t("handledNote")), note, outcome, button);
    return form;
  }

  // -- page 3: manual export -------------------------------------------------------------------------------------
  function parseIds(text) {
    const words = text.split(/[\s,;]+/).filter((w) => w !== "");
    const bad = words.filter((w) => !/^\d{1,19}$/.test(w) || w.replace(/^0+/, "") === "");
    const ids = [...new Set(words.filter((w) => !bad.includes(w)).map((w) => w.replace(/^0+/, "")))];
    return {ids: ids, bad: bad};
  }

  async function exportPage(route, container, current) {
    const connectionId = route.connectionId;
    crumbs(connectionId, "tabExport");
    if (!current()) return;
    const ids = el("textarea", {id: "export-ids", rows: 6, spellcheck: "false", "aria-describedby": "export-help"});
    const setTag = el("input", {type: "checkbox", id: "export-set-tag", checked: true});
    const onlyUntagged = el("input", {type: "checkbox", id: "export-only-untagged"});
    const problem = el("p", {class: "error", role: "alert", id: "export-problem", hidden: true});
    const progress = el("p", {role: "status", id: "export-progress"});
    const results = el("div", {id: "export-results"});
    const button = el("button", {type: "submit", id: "export-button"}, t("exportButton"));
    const form = el("form", {class: "card", id: "export-form", onsubmit: async (event) => {
      event.preventDefault();
      problem.hidden = true;
      const parsed = parseIds(ids.value);
      if (parsed.bad.length || !parsed.ids.length) {
        problem.hidden = false;
        problem.textContent = parsed.bad.length ? t("exportBadIds", {ids: parsed.bad.join(", ")}) : t("exportNoIds");
        return;
      }
      button.disabled = true;
      clear(results);
      try {
        const outcomes = await runExport(connectionId, parsed.ids, setTag.checked, onlyUntagged.checked, progress);
        progress.textContent = "";
        results.append(outcomeTable(connectionId, parsed.ids, outcomes));
      } catch (exc) {
        progress.textContent = "";
        problem.hidden = false;
        problem.textContent = exc.message;
      } finally {
        button.disabled = false;
      }
    }},
      el("p", {id: "export-help"}, t("exportHelp")),
      el("label", {for: "export-ids"}, t("exportIds")), ids,
      el("div", {class: "check"}, setTag, el("label", {for: "export-set-tag"}, t("exportSetTag"))),
      el("div", {class: "check"}, onlyUntagged, el("label", {for: "export-only-untagged"}, t("exportOnlyUntagged"))),
      problem, button);
    clear(container).append(el("h1", {}, t("exportTitle")), form, progress, results);
  }

  // The API checks orders for a limited time per request and lists the rest in `resend`: send those again (with a
  // bound, so a connector that never gets further cannot keep the page busy forever).
  async function runExport(connectionId, ids, setTag, onlyUntagged, progress) {
    const outcomes = new Map();
    let pending = ids.map(Number);
    for (let round = 0; pending.length && round < MAX_RESENDS; round++) {
      const batch = pending.slice(0, MAX_IDS_PER_REQUEST);
      const answer = await api("POST", connectionPath(connectionId) + "/exports",
                               {orderIds: batch, setTag: setTag, onlyUntagged: onlyUntagged});
      for (const outcome of answer.orders) {
        if (outcome.outcome !== "notChecked" || !outcomes.has(outcome.orderId)) outcomes.set(outcome.orderId, outcome);
      }
      const resend = new Set(answer.resend);
      pending = [...batch.filter((id) => resend.has(id)), ...pending.slice(MAX_IDS_PER_REQUEST)];
      const checked = [...outcomes.values()].filter((o) => o.outcome !== "notChecked").length;
      progress.textContent = t("exportRunning", {done: checked, total: ids.length});
    }
    return outcomes;
  }

  function outcomeTable(connectionId, ids, outcomes) {
    const body = el("tbody");
    for (const id of ids) {
      const outcome = outcomes.get(Number(id));
      if (!outcome) continue;
      body.append(el("tr", {"data-order": outcome.orderId, "data-outcome": outcome.outcome},
        el("td", {}, el("a", {href: orderLink(connectionId, outcome.orderId)}, String(outcome.orderId))),
        el("td", {}, t("outcome_" + outcome.outcome)),
        el("td", {class: "reason"}, outcome.detail || t("none")),
        el("td", {}, outcome.voucherId || t("none"))));
    }
    return el("section", {},
      el("h2", {}, t("exportResult")),
      el("table", {class: "outcomes"},
        el("thead", {}, el("tr", {}, ["colOrder", "colOutcome", "colDetail", "colVoucher"]
          .map((key) => el("th", {scope: "col"}, t(key))))),
        body));
  }

  // -- page 4: settings, in the order of Billbee's three tabs ----------------------------------------------------
  // Every choice is a picker filled from setup-options (names, never raw ids); credentials are write-only: the
  // fields start empty and are sent only when all four are filled. Saving runs the API's setup checks, whose
  // results are shown next to the field each one is about.
  function checkTarget(name) {
    if (name === "billbeeCredentials") return "field-billbee";
    if (name === "sevdeskToken" || name === "bookkeepingVersion") return "field-sevdesk-token";
    if (name.startsWith("shop[")) return "field-shops";
    if (name === "paymentAccount[defaultCheckAccountId]") return "field-default-account";
    let match = /^paymentAccount\[paymentMethod (\d+)\]$/.exec(name);
    if (match) return "payment-row-" + match[1];
    match = /^revenueAccount\[rule (\d+) ([\d.]+) %\]$/.exec(name);
    if (match) return "revenue-row-" + match[1] + "-" + match[2];
    return null;
  }

  function picker(id, options, selected, empty) {
    const select = el("select", {id: id});
    if (empty) select.append(el("option", {value: ""}, empty));
    for (const [value, label] of options) {
      select.append(el("option", {value: String(value), selected: String(value) === String(selected)}, label));
    }
    return select;
  }

  function checkboxes(name, options, chosen) {
    const box = el("div", {class: "choices", role: "group"});
    for (const option of options) {
      const id = name + "-" + option.id;
      box.append(el("div", {class: "check"},
        el("input", {type: "checkbox", id: id, value: String(option.id), checked: chosen.includes(option.id)}),
        el("label", {for: id}, (option.name || String(option.id)))));
    }
    return box;
  }

  function checked(container) {
    return [...container.querySelectorAll("input[type=checkbox]:checked")].map((i) => Number(i.value));
  }

  function block(id, label, ...content) {
    return el("div", {class: "field", id: id}, label ? el("p", {class: "label"}, label) : null, ...content);
  }

  function labelled(id, key, input) {
    return el("div", {class: "field", id: "field-" + id}, el("label", {for: id}, t(key)), input);
  }

  function checkbox(id, key, value) {
    return el("div", {class: "check field", id: "field-" + id},
      el("input", {type: "checkbox", id: id, checked: Boolean(value)}), el("label", {for: id}, t(key)));
  }

  async function settingsPage(route, container, current) {
    const connectionId = route.connectionId;
    crumbs(connectionId, "tabSettings");
    const view = await api("GET", connectionPath(connectionId));
    let options = null;
    let optionsProblem = null;
    try {
      options = await api("GET", connectionPath(connectionId) + "/setup-options");
    } catch (exc) {
      optionsProblem = exc.message;
    }
    if (!current()) return;
    clear(container).append(el("h1", {}, view.connection.name, " · ", t("settingsTitle")));
    if (!options) {
      container.append(errorBox(t("setOptionsFailed", {detail: optionsProblem})));
      return;
    }
    settingsForm(container, connectionId, view.connection, options, null);
  }

  // The three tabs for a stored connection, or for a new one (``typed``: the credential fields the user filled in
  // to load the options; they move into the tabs with their values, and creating offline accounts waits for the
  // first save, because that route needs a stored connection).
  function settingsForm(container, connectionId, settings, options, typed) {
    const isNew = Boolean(typed);
    const billbee = options.billbee;
    const sevdesk = options.sevdesk;
    const accountName = (a) => a.name + " (" + a.type + ")";

    // Tab 1: general
    const shops = checkboxes("shop", billbee.shops, settings.general.shopIds);
    const states = checkboxes("state", billbee.orderStates, settings.general.orderStateIds);
    const credentialInputs = typed || credentialFields();
    const [apiKey, user, password, sevdeskToken] = credentialInputs;
    const general = el("fieldset", {class: "tab", id: "tab-general"}, el("legend", {}, t("tabGeneral")),
      labelled("name", "setName", el("input", {type: "text", id: "name", value: settings.name})),
      checkbox("enabled", "setEnabled", settings.enabled),
      labelled("startDate", "setStartDate", el("input", {type: "date", id: "startDate",
                                                           value: settings.general.startDate})),
      block("field-shops", t("setShops"), shops),
      checkbox("includeManualOrders", "setManual", settings.general.includeManualOrders),
      block("field-states", t("setStates"), states),
      labelled("exportTag", "setTag", el("input", {type: "text", id: "exportTag", value: settings.exportTag})),
      block("field-billbee", t("setBillbee"),
        el("label", {for: "billbeeApiKey"}, t("setApiKey")), apiKey,
        el("label", {for: "billbeeUsername"}, t("setUser")), user,
        el("label", {for: "billbeeApiPassword"}, t("setPassword")), password));

    // Tab 2: sevDesk
    const s = settings.sevdesk;
    const accountOptions = sevdesk.paymentAccounts.map((a) => [a.id, accountName(a)]);
    const defaultAccount = picker("defaultCheckAccountId", accountOptions, s.defaultCheckAccountId, t("setNoAccount"));
    const sevdeskTab = el("fieldset", {class: "tab", id: "tab-sevdesk"}, el("legend", {}, t("tabSevdesk")),
      labelled("paymentReconciliation", "setReconciliation", picker("paymentReconciliation",
        ["billbee", "sevdesk"].map((v) => [v, t("rec_" + v)]), s.paymentReconciliation)),
      block("field-sevdesk-token", null, el("label", {for: "sevdeskApiToken"}, t("setSevdeskToken")), sevdeskToken),
      checkbox("createContacts", "setContacts", s.createContacts),
      checkbox("bookUnassignedPaymentsAsDefault", "setUnassigned", s.bookUnassignedPaymentsAsDefault),
      el("div", {class: "field", id: "field-default-account"},
        el("label", {for: "defaultCheckAccountId"}, t("setDefaultAccount")), defaultAccount),
      labelled("voucherDate", "setVoucherDate", picker("voucherDate",
        ["invoice", "payment", "order"].map((v) => [v, t("date_" + v)]), s.voucherDate)),
      labelled("creditNotes", "setCreditNotes", picker("creditNotes",
        ["voucher", "off"].map((v) => [v, t("cn_" + v)]), s.creditNotes)));

    // Tab 3: accounts
    const typeName = (id) => (billbee.paymentTypes.find((p) => p.id === id) || {}).name || String(id);
    const paymentBody = el("tbody");
    const status = el("p", {role: "status", id: "settings-status"});
    function paymentRow(method, accountId) {
      const select = picker("payment-" + method, accountOptions, accountId, t("setNoAccount"));
      select.setAttribute("data-method", String(method));
      select.setAttribute("aria-label", typeName(method));
      const create = el("button", {type: "button", class: "secondary", "data-create": String(method),
                                   onclick: async () => {
        create.disabled = true;
        const name = typeName(method) + " BB";
        try {
          const made = await api("POST", connectionPath(connectionId) + "/payment-accounts",
                                 {paymentMethod: method, name: name});
          const account = made.checkAccount;
          if (!accountOptions.some(([id]) => id === account.id)) {
            accountOptions.push([account.id, accountName(account)]);
            for (const other of document.querySelectorAll("select[data-method], #defaultCheckAccountId")) {
              other.append(el("option", {value: String(account.id)}, accountName(account)));
            }
          }
          select.value = String(account.id);
          status.className = "ok";
          status.textContent = t("setCreated", {name: account.name});
        } catch (exc) {
          status.className = "error";
          status.textContent = exc.message;
        } finally {
          create.disabled = false;
        }
      }}, t("setCreateAccount"));
      return el("tr", {id: "payment-row-" + method}, el("th", {scope: "row"}, typeName(method)),
        el("td", {}, select), el("td", {}, accountId || isNew ? null : create));
    }
    for (const mapping of settings.accounts.paymentAccounts) {
      paymentBody.append(paymentRow(mapping.paymentMethod, mapping.checkAccountId));
    }
    const mapped = () => [...paymentBody.querySelectorAll("select[data-method]")].map((x) => Number(x.dataset.method));
    const addMethod = picker("add-method", billbee.paymentTypes
      .filter((p) => !settings.accounts.paymentAccounts.some((m) => m.paymentMethod === p.id))
      .map((p) => [p.id, p.name || String(p.id)]), "", t("setAddMethod"));
    addMethod.addEventListener("change", () => {
      const method = Number(addMethod.value);
      if (method && !mapped().includes(method)) paymentBody.append(paymentRow(method, null));
      addMethod.querySelector("option[value='" + method + "']").remove();
      addMethod.value = "";
    });
    const ruleName = (rule) => {
      for (const account of sevdesk.revenueAccounts) {
        const found = account.allowedTaxRules.find((r) => r.taxRule === rule);
        if (found && found.name) return rule + " " + found.name;
      }
      return String(rule);
    };
    const revenueBody = el("tbody");
    function revenueRow(rule, rate, accountId) {
      const allowed = sevdesk.revenueAccounts.filter((a) => a.allowedTaxRules.some(
        (r) => r.taxRule === rule && r.taxRates.includes(rate)));
      const choices = (allowed.length ? allowed : sevdesk.revenueAccounts)
        .map((a) => [a.accountDatevId, [a.accountNumber, a.accountName].filter(Boolean).join(" ")]);
      if (accountId && !choices.some(([id]) => id === accountId)) choices.push([accountId, String(accountId)]);
      const select = picker("revenue-" + rule + "-" + rate, choices, accountId, t("setNoAccount"));
      select.setAttribute("data-rule", String(rule));
      select.setAttribute("data-rate", rate);
      return el("tr", {id: "revenue-row-" + rule + "-" + rate},
        el("th", {scope: "row"}, ruleName(rule)), el("td", {}, rate + " %"), el("td", {}, select));
    }
    for (const mapping of settings.accounts.revenueAccounts) {
      revenueBody.append(revenueRow(mapping.taxRule, mapping.taxRate, mapping.accountDatevId));
    }
    // Every (tax rule, rate) sevDesk allows for revenue and the settings do not map yet.
    const combinations = [];
    for (const account of sevdesk.revenueAccounts) {
      for (const rule of account.allowedTaxRules) {
        for (const rate of rule.taxRates) {
          const key = rule.taxRule + "|" + rate;
          if (!combinations.some((c) => c.key === key)) combinations.push({key: key, rule: rule.taxRule, rate: rate});
        }
      }
    }
    const addRevenue = picker("add-revenue", combinations
      .filter((c) => !settings.accounts.revenueAccounts.some((m) => m.taxRule === c.rule && m.taxRate === c.rate))
      .map((c) => [c.key, ruleName(c.rule) + " · " + c.rate + " %"]), "", t("setAddRevenue"));
    addRevenue.addEventListener("change", () => {
      const chosen = combinations.find((c) => c.key === addRevenue.value);
      if (!chosen) return;
      revenueBody.append(revenueRow(chosen.rule, chosen.rate, null));
      addRevenue.querySelector("option:checked").remove();
      addRevenue.value = "";
    });
    const accountsTab = el("fieldset", {class: "tab", id: "tab-accounts"}, el("legend", {}, t("tabAccounts")),
      el("h2", {}, t("setPaymentAccounts")),
      el("table", {class: "payment-accounts"}, el("thead", {}, el("tr", {},
        el("th", {scope: "col"}, t("colPaymentType")), el("th", {scope: "col"}, t("colAccount")), el("th", {}))),
        paymentBody),
      el("div", {class: "field"}, addMethod),
      el("h2", {}, t("setRevenueAccounts")),
      el("table", {class: "revenue-accounts"}, el("thead", {}, el("tr", {},
        el("th", {scope: "col"}, t("colTaxRule")), el("th", {scope: "col"}, t("colTaxRate")),
        el("th", {scope: "col"}, t("colAccount")))), revenueBody),
      el("div", {class: "field"}, addRevenue));

    // The three tabs: one visible at a time, switched with buttons (a tablist).
    const tabs = [["tabGeneral", general], ["tabSevdesk", sevdeskTab], ["tabAccounts", accountsTab]];
    const tablist = el("div", {class: "tablist", role: "tablist"});
    function showTab(index) {
      tabs.forEach(([, panel], i) => { panel.hidden = i !== index; });
      [...tablist.children].forEach((button, i) => button.setAttribute("aria-selected", String(i === index)));
    }
    tabs.forEach(([key], index) => tablist.append(el("button", {type: "button", role: "tab", "data-tab": key,
                                                                 onclick: () => showTab(index)}, t(key))));
    showTab(0);

    const results = el("div", {id: "settings-checks"});
    const save = el("button", {type: "submit", id: "settings-save"}, t("setSave"));
    const form = el("form", {id: "settings-form", novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      for (const old of form.querySelectorAll(".check-result")) old.remove();
      clear(results);
      const secrets = credentialInputs.map((i) => i.value.trim());
      if (secrets.some(Boolean) && !secrets.every(Boolean)) {
        status.className = "error";
        status.textContent = t("setCredentialsAll");
        return;
      }
      const body = {
        name: form.querySelector("#name").value,
        enabled: form.querySelector("#enabled").checked,
        exportTag: form.querySelector("#exportTag").value,
        general: {startDate: form.querySelector("#startDate").value, shopIds: checked(shops),
                  includeManualOrders: form.querySelector("#includeManualOrders").checked,
                  orderStateIds: checked(states)},
        sevdesk: {paymentReconciliation: form.querySelector("#paymentReconciliation").value,
                  createContacts: form.querySelector("#createContacts").checked,
                  bookUnassignedPaymentsAsDefault: form.querySelector("#bookUnassignedPaymentsAsDefault").checked,
                  defaultCheckAccountId: defaultAccount.value ? Number(defaultAccount.value) : null,
                  voucherDate: form.querySelector("#voucherDate").value,
                  creditNotes: form.querySelector("#creditNotes").value},
        accounts: {
          paymentAccounts: [...paymentBody.querySelectorAll("select[data-method]")].filter((x) => x.value)
            .map((x) => ({paymentMethod: Number(x.dataset.method), checkAccountId: Number(x.value)})),
          revenueAccounts: [...revenueBody.querySelectorAll("select[data-rule]")].filter((x) => x.value)
            .map((x) => ({taxRule: Number(x.dataset.rule), taxRate: x.dataset.rate, accountDatevId: Number(x.value)})),
        },
      };
      if (secrets.every(Boolean)) {
        body.credentials = {billbeeApiKey: secrets[0], billbeeUsername: secrets[1], billbeeApiPassword: secrets[2],
                            sevdeskApiToken: secrets[3]};
      }
      save.disabled = true;
      status.className = "";
      status.textContent = t("setSaving");
      let setup = null;
      let problems = [];
      try {
        const answer = await api("PUT", connectionPath(connectionId), body);
        setup = answer.setup;
        status.className = "ok";
        status.textContent = t("setSaved");
        if (answer.created) {
          status.append(" ", el("a", {href: "#/c/" + encodeURIComponent(connectionId) + "/orders", id: "created-link"},
                                t("newCreated", {id: connectionId})));
        }
        credentialInputs.forEach((i) => { i.value = ""; });
      } catch (exc) {
        status.className = "error";
        status.textContent = exc.status === 422 ? t("setRefused") : exc.message;
        setup = exc.body && exc.body.setup;
        problems = (exc.body && exc.body.problems) || [];
      } finally {
        save.disabled = false;
      }
      showChecks(form, results, setup ? setup.checks : [], problems, showTab, tabs);
    }}, tablist, general, sevdeskTab, accountsTab, status, save, results);
    container.append(form);
  }

  function credentialFields() {
    return ["billbeeApiKey", "billbeeUsername", "billbeeApiPassword", "sevdeskApiToken"]
      .map((name) => el("input", {type: "password", id: name, autocomplete: "new-password", spellcheck: "false"}));
  }

  // -- a new connection: id and credentials first, then the three tabs filled with what they give access to ------
  async function newConnectionPage(route, container, current) {
    crumbs(null, null);
    if (!current()) return;
    const id = el("input", {type: "text", id: "new-id", autocomplete: "off", spellcheck: "false",
                            "aria-describedby": "new-id-help"});
    const typed = credentialFields();
    const labels = ["setApiKey", "setUser", "setPassword", "setSevdeskTokenNew"];
    const problem = el("p", {class: "error", role: "alert", id: "new-problem", hidden: true});
    const load = el("button", {type: "submit", id: "new-load"}, t("newLoad"));
    const step = el("form", {class: "card", id: "new-form", novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      problem.hidden = true;
      const connectionId = id.value.trim();
      const secrets = typed.map((input) => input.value.trim());
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(connectionId)) {
        problem.hidden = false;
        problem.textContent = t("newBadId");
        return;
      }
      if (!secrets.every(Boolean)) {
        problem.hidden = false;
        problem.textContent = t("setCredentialsAll");
        return;
      }
      load.disabled = true;
      let options;
      try {
        options = await api("POST", connectionPath(connectionId) + "/setup-options", {credentials: {
          billbeeApiKey: secrets[0], billbeeUsername: secrets[1], billbeeApiPassword: secrets[2],
          sevdeskApiToken: secrets[3]}});
      } catch (exc) {
        problem.hidden = false;
        problem.textContent = exc.message;
        load.disabled = false;
        return;
      }
      id.disabled = true;
      step.remove();
      const today = new Date();
      const date = today.getFullYear() + "-" + String(today.getMonth() + 1).padStart(2, "0") + "-"
        + String(today.getDate()).padStart(2, "0");
      const defaults = {
        connectionId: connectionId, name: connectionId, enabled: true, exportTag: "Sevdesk",
        general: {startDate: date, shopIds: [], includeManualOrders: true, orderStateIds: []},
        sevdesk: {paymentReconciliation: "billbee", createContacts: false, bookUnassignedPaymentsAsDefault: false,
                  defaultCheckAccountId: null, voucherDate: "invoice", creditNotes: "voucher"},
        accounts: {paymentAccounts: [], revenueAccounts: []},
      };
      container.append(el("p", {class: "hint"}, t("newIdIs", {id: connectionId})));
      settingsForm(container, connectionId, defaults, options, typed);
    }},
      el("p", {}, t("newHelp")),
      el("label", {for: "new-id"}, t("newId")), id, el("p", {class: "hint", id: "new-id-help"}, t("newIdHelp")),
      typed.flatMap((input, index) => [el("label", {for: input.id}, t(labels[index])), input]),
      problem, load);
    clear(container).append(el("h1", {}, t("newTitle")), step);
  }

  function showChecks(form, results, checks, problems, showTab, tabs) {
    const list = el("ul", {class: "checks"});
    let firstBad = null;
    for (const check of checks) {
      const line = el("li", {class: check.ok ? "ok-text" : "error-text", "data-check": check.check},
        (check.ok ? t("checkOk") : t("checkBad")) + " · " + check.check + ": " + check.detail);
      list.append(line);
      const target = checkTarget(check.check);
      const field = target && form.querySelector("#" + CSS.escape(target));
      if (field) {
        const note = el("p", {class: "check-result " + (check.ok ? "ok-text" : "error-text"),
                              "data-check": check.check}, (check.ok ? "✓ " : "✗ ") + check.detail);
        if (field.tagName === "TR") field.lastElementChild.append(note); else field.append(note);
        if (!check.ok && firstBad === null) firstBad = field;
      }
    }
    for (const problem of problems) {
      list.append(el("li", {class: "error-text", "data-check": problem.field}, problem.field + ": " + problem.problem));
    }
    if (list.firstChild) results.append(el("h2", {}, t("setChecks")), list);
    if (firstBad) {
      const index = tabs.findIndex(([, panel]) => panel.contains(firstBad));
      if (index >= 0) showTab(index);
    }
  }

  // -- page 5: why was this order not exported? ------------------------------------------------------------------
  async function whyPage(route, container, current) {
    const connectionId = route.connectionId;
    crumbs(connectionId, "tabWhy");
    if (!current()) return;
    const input = el("input", {id: "why-order", type: "text", inputmode: "numeric", autocomplete: "off",
                               value: route.orderId || ""});
    const problem = el("p", {class: "error", role: "alert", id: "why-problem", hidden: true});
    const answer = el("div", {id: "why-answer"});
    const form = el("form", {class: "card", id: "why-form", onsubmit: (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!/^\d{1,19}$/.test(value)) {
        problem.hidden = false;
        problem.textContent = t("invalidId");
        return;
      }
      location.hash = "#/c/" + encodeURIComponent(connectionId) + "/why/" + value;
    }},
      el("p", {}, t("whyHelp")),
      el("label", {for: "why-order"}, t("whyLabel")), input,
      el("button", {type: "submit", id: "why-button"}, t("whyButton")), problem);
    clear(container).append(el("h1", {}, t("whyTitle")), form, answer);
    if (!route.orderId) return;
    const explained = await api("GET", connectionPath(connectionId) + "/orders/" + encodeURIComponent(route.orderId)
                                + "/explanation");
    if (!current()) return;
    const verdict = {exported: "whyExported", inProgress: "whyWillExport"}[explained.verdict] || "whyNotExported";
    const dl = el("dl", {class: "record"});
    field(dl, "whyReason", explained.reason);
    if (explained.whatToDo) field(dl, "whyWhatToDo", explained.whatToDo);
    answer.append(el("p", {class: "verdict", "data-verdict": explained.verdict}, t(verdict)), dl);
    const order = explained.order;
    if (order) {
      const facts = el("dl", {class: "record billbee-order"});
      field(facts, "whyOrderNumber", order.orderNumber || t("none"));
      field(facts, "whyCustomer", order.customerName || t("none"));
      field(facts, "whyCompany", order.company || t("none"));
      field(facts, "whyShop", order.shopName || t("none"));
      field(facts, "whyOrderState", order.state === null || order.state === undefined ? t("none")
        : (order.stateName ? order.stateName + " (" + order.state + ")" : String(order.state)));
      field(facts, "fieldInvoice", order.invoiceNumber || t("none"));
      field(facts, "whyTags", (order.tags || []).join(", ") || t("none"));
      answer.append(el("h2", {}, t("whyOrder")), facts);
    }
    if (explained.record) {
      answer.append(el("p", {}, el("a", {href: orderLink(connectionId, explained.orderId)}, t("whyRecord"))));
    }
  }

  // -- page 6: the reconciliation report of a period -------------------------------------------------------------
  // GET /connections/{id}/reconciliation answers 202 while a large period is read in slices: the page sends the same
  // request again after Retry-After, at most MAX_REC_ROUNDS times, and the user can cancel (docs/reconciliation.md).
  const MAX_REC_ROUNDS = 120;
  const MAX_REC_WAIT_SECONDS = 120;
  const REC_CATEGORIES = ["missing", "different", "extra", "open", "matched"];

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  function previousMonth() {
    const now = new Date();
    const first = new Date(now.getFullYear(), now.getMonth() - 1, 1);
    return first.getFullYear() + "-" + pad2(first.getMonth() + 1);
  }

  function monthBounds(month) {
    const [year, number] = month.split("-").map(Number);
    return [month + "-01", month + "-" + pad2(new Date(year, number, 0).getDate())];
  }

  function wholeMonth(first, last) {
    return /^\d{4}-\d{2}-01$/.test(first) && first.slice(0, 7) === last.slice(0, 7)
      && monthBounds(first.slice(0, 7))[1] === last;
  }

  // Ask until the report is there: 200 answers it; 202 shows its progress and waits Retry-After. Returns the final
  // Response and the number of requests, or null when cancelled.
  async function untilAnswered(path, accept, run, show) {
    for (let round = 1; round <= MAX_REC_ROUNDS; round++) {
      if (run.cancelled()) return null;
      let response;
      try {
        response = await send("GET", path, {accept: accept, signal: run.controller.signal});
      } catch (exc) {
        if (exc.name === "AbortError") return null;
        throw exc;
      }
      if (response.status !== 202) return {response: response, rounds: round};
      const running = await response.json();
      const header = Number(response.headers.get("Retry-After"));
      const wait = Math.min(MAX_REC_WAIT_SECONDS, Math.max(1, header || running.retryAfter || 1));
      show(running, round, wait);
      await run.pause(wait);
    }
    throw new ApiFailure(0, null, t("recTooLong", {rounds: MAX_REC_ROUNDS}));
  }

  function newRun(current) {
    let stopped = false;
    let timer = null;
    let wake = null;
    const run = {
      controller: new AbortController(),
      cancelled: () => stopped || !current(),
      cancel: () => {
        stopped = true;
        run.controller.abort();
        if (timer !== null) clearTimeout(timer);
        if (wake) wake();
      },
      pause: (seconds) => new Promise((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, seconds * 1000);
      }),
    };
    return run;
  }

  function runningText(running, round, wait) {
    const p = running.progress || {};
    const parts = [t(running.status === "busy" ? "recBusy" : "recReading")];
    if (p.billbee) {
      parts.push(t("recProgressBillbee", {pages: p.billbee.pagesRead, documents: p.billbee.documents}));
    }
    if (p.sevdesk) {
      parts.push(t("recProgressSevdesk", {vouchers: p.sevdesk.vouchers, positions: p.sevdesk.positionsRead}));
    }
    if (p.records) parts.push(t("recProgressRecords", {read: p.records.read, of: p.records.of}));
    parts.push(t("recRound", {round: round, max: MAX_REC_ROUNDS, wait: wait}));
    return parts.join(" · ");
  }

  async function reconciliationPage(route, container, current) {
    const connectionId = route.connectionId;
    crumbs(connectionId, "tabReconciliation");
    const view = await api("GET", connectionPath(connectionId));
    if (!current()) return;
    const chosen = route.from && route.to ? [route.from, route.to] : null;
    const byMonth = !chosen || wholeMonth(chosen[0], chosen[1]);
    const month = el("input", {type: "month", id: "rec-month",
                               value: chosen && byMonth ? chosen[0].slice(0, 7) : previousMonth()});
    const first = el("input", {type: "date", id: "rec-from", value: chosen ? chosen[0] : ""});
    const last = el("input", {type: "date", id: "rec-to", value: chosen ? chosen[1] : ""});
    const modeMonth = el("input", {type: "radio", name: "rec-mode", id: "rec-mode-month", value: "month",
                                   checked: byMonth});
    const modePeriod = el("input", {type: "radio", name: "rec-mode", id: "rec-mode-period", value: "period",
                                    checked: !byMonth});
    const problem = el("p", {class: "error", role: "alert", id: "rec-problem", hidden: true});
    const base = "#/c/" + encodeURIComponent(connectionId) + "/reconciliation/";
    const form = el("form", {class: "card", id: "rec-form", novalidate: true, onsubmit: (event) => {
      event.preventDefault();
      problem.hidden = true;
      let period = null;
      if (modeMonth.checked && /^\d{4}-\d{2}$/.test(month.value)) period = monthBounds(month.value);
      if (modePeriod.checked && first.value && last.value) period = [first.value, last.value];
      if (!period || period[0] > period[1]) {
        problem.hidden = false;
        problem.textContent = t(period ? "recBackwards" : "recNoPeriod");
        return;
      }
      const target = base + period[0] + "/" + period[1];
      if (location.hash === target) render(); else location.hash = target;
    }},
      el("p", {}, t("recHelp")),
      el("div", {class: "check"}, modeMonth, el("label", {for: "rec-mode-month"}, t("recMonth"))),
      el("div", {class: "field indent"}, month),
      el("div", {class: "check"}, modePeriod, el("label", {for: "rec-mode-period"}, t("recPeriod"))),
      el("div", {class: "field indent period"}, el("label", {for: "rec-from"}, t("recFrom")), first,
         el("label", {for: "rec-to"}, t("recTo")), last),
      problem, el("button", {type: "submit", id: "rec-button"}, t("recButton")));
    month.addEventListener("focus", () => { modeMonth.checked = true; });
    first.addEventListener("focus", () => { modePeriod.checked = true; });
    last.addEventListener("focus", () => { modePeriod.checked = true; });
    const report = el("div", {id: "rec-report"});
    clear(container).append(el("h1", {}, view.connection.name, " · ", t("recTitle")), form, report);
    if (!chosen) return;

    const query = "?from=" + encodeURIComponent(chosen[0]) + "&to=" + encodeURIComponent(chosen[1]);
    const path = connectionPath(connectionId) + "/reconciliation" + query;
    const progress = el("p", {id: "rec-progress", role: "status"}, t("recReading"));
    const run = newRun(current);
    const cancel = el("button", {type: "button", id: "rec-cancel", class: "secondary", onclick: () => run.cancel()},
                      t("recCancel"));
    report.append(el("div", {class: "running"}, progress, cancel));
    const answered = await untilAnswered(path, "application/json", run, (running, round, wait) => {
      progress.textContent = runningText(running, round, wait);
    });
    if (!current()) return;
    clear(report);
    if (answered === null) {
      report.append(el("p", {id: "rec-cancelled", role: "status"}, t("recCancelled")));
      return;
    }
    const body = await answered.response.json();
    showReport(report, connectionId, body, answered.rounds, path, current);
  }

  function amountCell(side, part, value) {
    const zero = /^-?0\.00$/.test(String(value));
    return el("td", {class: "amount" + (side === "difference" && !zero ? " diff" : ""), "data-side": side,
                     "data-part": part, "data-value": String(value)}, formatMoney(value));
  }

  function totalsTable(body) {
    const sides = ["billbee", "sevdesk", "difference"];
    const parts = ["gross", "net", "vat"];
    const head = el("thead", {},
      el("tr", {}, el("th", {scope: "col", rowspan: 2}, t("colTaxRule")), el("th", {scope: "col", rowspan: 2},
                                                                              t("colTaxRate")),
        sides.map((side) => el("th", {scope: "colgroup", colspan: 3, class: "group"}, t("recSide_" + side)))),
      el("tr", {}, sides.flatMap(() => parts.map((part) => el("th", {scope: "col", class: "amount"},
                                                               t("recPart_" + part))))));
    const rows = el("tbody");
    for (const row of body.totals) {
      rows.append(el("tr", {"data-rule": row.taxRule === null ? "" : String(row.taxRule), "data-rate": row.rate},
        el("th", {scope: "row"}, row.taxRuleName), el("td", {}, row.rate + " %"),
        sides.flatMap((side) => parts.map((part) => amountCell(side, part, row[side][part])))));
    }
    const foot = el("tfoot", {}, el("tr", {"data-total": "all"},
      el("th", {scope: "row", colspan: 2}, t("recTotal")),
      sides.flatMap((side) => parts.map((part) => amountCell(side, part, body.total[side][part])))));
    return el("table", {class: "rec-totals"}, head, rows, foot);
  }

  function lineRow(connectionId, line) {
    const b = line.billbee;
    const v = line.sevdesk;
    const x = line.export;
    const exportCell = x
      ? el("td", {class: "export", "data-export-state": x.state},
        el("a", {href: orderLink(connectionId, x.orderId)}, t("state_" + x.state)),
        x.reason ? el("span", {class: "reason"}, ": " + x.reason) : null)
      : el("td", {class: "export"}, t("recNoExport"));
    return el("tr", {"data-category": line.category, "data-number": line.invoiceNumber || "",
                     "data-voucher": v ? v.voucherId : ""},
      el("td", {}, line.invoiceNumber || t("none")),
      el("td", {}, b ? [b.invoiceDate || t("none"), " · ", el("span", {class: "amount", "data-value": b.total.gross},
                                                               formatMoney(b.total.gross))] : t("none")),
      el("td", {}, v ? [t("recVoucher", {id: v.voucherId}), " · ", v.voucherDate || t("none"), " · ",
                        el("span", {class: "amount", "data-value": v.total.gross}, formatMoney(v.total.gross))]
        : t("none")),
      exportCell,
      el("td", {class: "reason"}, line.reasons.length ? el("ul", {}, line.reasons.map((r) => el("li", {}, r)))
        : t("none")));
  }

  function linesTable(connectionId, lines, category) {
    return el("table", {class: "rec-lines", "data-category": category},
      el("thead", {}, el("tr", {}, ["recColNumber", "recColBillbee", "recColSevdesk", "recColExport", "recColReasons"]
        .map((key) => el("th", {scope: "col"}, t(key))))),
      el("tbody", {}, lines.map((line) => lineRow(connectionId, line))));
  }

  function showReport(target, connectionId, body, rounds, path, current) {
    const counts = body.counts || {};
    const verdict = body.reconciles ? "reconciles" : "doesNotReconcile";
    target.setAttribute("data-rounds", String(rounds));
    target.append(
      el("p", {class: "verdict " + (body.reconciles ? "ok-text" : "error-text"), id: "rec-verdict",
               "data-verdict": verdict}, t("recVerdict_" + verdict, {from: body.period.from, to: body.period.to})),
      el("p", {id: "rec-counts"}, REC_CATEGORIES.map((c) => t("recCount_" + c, {n: counts[c] || 0})).join(", ")),
      el("p", {class: "hint"}, t("recPayments_" + body.paymentReconciliation)));
    const csvStatus = el("span", {id: "rec-csv-status", role: "status"});
    const csv = el("button", {type: "button", id: "rec-csv", class: "secondary", onclick: async () => {
      csv.disabled = true;
      csvStatus.className = "";
      csvStatus.textContent = " " + t("recCsvRunning");
      try {
        const run = newRun(current);
        const answered = await untilAnswered(path + "&format=csv", "text/csv", run, (running, round, wait) => {
          csvStatus.textContent = " " + runningText(running, round, wait);
        });
        if (answered === null) return;
        const blob = await answered.response.blob();
        const name = "reconciliation-" + connectionId + "-" + body.period.from + "-" + body.period.to + ".csv";
        const url = URL.createObjectURL(blob);
        const link = el("a", {href: url, download: name, hidden: true});
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        csvStatus.className = "ok-text";
        csvStatus.setAttribute("data-bytes", String(blob.size));
        csvStatus.textContent = " " + t("recCsvDone", {name: name});
      } catch (exc) {
        csvStatus.className = "error-text";
        csvStatus.textContent = " " + exc.message;
      } finally {
        csv.disabled = false;
      }
    }}, t("recCsv"));
    target.append(el("div", {class: "actions"}, csv, csvStatus));
    target.append(el("h2", {}, t("recTotals")), totalsTable(body));
    for (const category of REC_CATEGORIES.slice(0, 4)) {
      const lines = body.lines.filter((line) => line.category === category);
      if (!lines.length) continue;
      target.append(el("h2", {id: "rec-" + category}, t("recCategory_" + category, {n: lines.length})),
        el("p", {class: "hint"}, t("recCategoryHelp_" + category)), linesTable(connectionId, lines, category));
    }
    const matched = body.lines.filter((line) => line.category === "matched");
    if (!body.lines.some((line) => line.category !== "matched")) {
      target.append(el("p", {class: "empty", id: "rec-all-matched"}, t("recAllMatched")));
    }
    if (matched.length) {
      target.append(el("details", {id: "rec-matched"},
        el("summary", {}, t("recMatchedSummary", {n: matched.length})), linesTable(connectionId, matched, "matched")));
    }
    if (body.notes && body.notes.length) {
      target.append(el("h2", {}, t("recNotes")), el("ul", {id: "rec-notes"}, body.notes.map((n) => el("li", {}, n))));
    }
  }

  // -- language --------------------------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.getAttribute("data-t"));
    document.getElementById("lang-de").setAttribute("aria-pressed", String(lang === "de"));
    document.getElementById("lang-en").setAttribute("aria-pressed", String(lang === "en"));
  }

  function setLanguage(value) {
    lang = value;
    localStorage.setItem(LANG_KEY, value);
    render();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("lang-de").addEventListener("click", () => setLanguage("de"));
    document.getElementById("lang-en").addEventListener("click", () => setLanguage("en"));
    document.getElementById("logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.hash = "#/";
      showLogin();
    });
    window.addEventListener("hashchange", render);
    render();
  });
})();
