// @ts-check
// The inspector's virtual clients ("Clients" tab): a form that connects a client through the
// real handshake (POST /_emu/clients), and a panel per client to emit events (with or without
// an ack) and watch what it receives (GET /_emu/clients/<id>/events). Several at once, so a
// conversation between users can be played from one page.
//
// It builds its own DOM into the element with id "playground" and adds its own tab button to
// the page's tab bar. Everything from a peer or the server goes into the page as text
// (textContent), never as markup. No inline handlers or styles: the look is in playground.css.
"use strict";

(() => {
  /** Received lines kept in a panel; older ones are removed (the count says how many). */
  const MAX_LINES = 200;

  const mount = document.getElementById("playground");
  if (!mount) return;

  /**
   * An element with a class, test id and text.
   * @template {keyof HTMLElementTagNameMap} K
   * @param {K} tag
   * @param {{cls?: string, testid?: string, text?: string}} [opts]
   * @returns {HTMLElementTagNameMap[K]}
   */
  function el(tag, opts = {}) {
    const node = document.createElement(tag);
    if (opts.cls) node.className = opts.cls;
    if (opts.testid) node.dataset.testid = opts.testid;
    if (opts.text !== undefined) node.textContent = opts.text;
    return node;
  }

  /**
   * A labelled input in a form grid.
   * @param {HTMLElement} form
   * @param {string} label
   * @param {string} testid
   * @param {string} value
   * @param {string} placeholder
   */
  function field(form, label, testid, value, placeholder) {
    form.append(el("label", { text: label }));
    const input = el("input", { testid });
    input.value = value;
    input.placeholder = placeholder;
    form.append(input);
    return input;
  }

  /**
   * Sends a JSON request to the admin API; resolves to the status and parsed body.
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<{status: number, body: any}>}
   */
  async function call(method, path, body) {
    /** @type {RequestInit} */
    const init = { method, headers: { "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = { message: text };
    }
    return { status: response.status, body: parsed };
  }

  /** @param {any} body */
  function reason(body) {
    return body && typeof body.message === "string" ? body.message : JSON.stringify(body);
  }

  // The tab button, next to the page's own tabs.
  const tabs = document.querySelector("nav.tabs");
  if (tabs) {
    const tab = el("button", { testid: "tab-clients", text: "Clients" });
    tab.dataset.tab = mount.dataset.pane ?? "clients";
    tab.addEventListener("click", () => {
      for (const b of document.querySelectorAll("[data-tab]")) {
        b.classList.toggle("active", b === tab);
      }
      for (const p of document.querySelectorAll("[data-pane]")) {
        p.classList.toggle("active", p === mount);
      }
    });
    tabs.append(tab);
  }

  mount.classList.add("playground");
  mount.append(el("h2", { text: "Virtual clients" }));
  mount.append(
    el("p", {
      cls: "note",
      text: "Real clients of your handler: each goes through the handshake with a token minted here, and its events go to the webhook like any client's.",
    }),
  );
  const form = el("div", { cls: "form" });
  mount.append(form);
  const hub = field(form, "hub", "vc-hub", "", "hub");
  const namespace = field(form, "namespace", "vc-namespace", "/", "/");
  const user = field(form, "user", "vc-user", "", "user id (optional)");
  const auth = field(form, "auth (JSON)", "vc-auth", "", '{"name":"alice"} (optional)');
  const buttons = el("div", { cls: "buttons" });
  const create = el("button", { testid: "vc-create", text: "New client" });
  buttons.append(create);
  mount.append(buttons);
  const result = el("div", { cls: "note", testid: "vc-result" });
  mount.append(result);
  const list = el("div", { cls: "pg-clients", testid: "vc-list" });
  mount.append(list);

  // The first declared hub, as a default.
  call("GET", "/_emu/status")
    .then(({ body }) => {
      if (!hub.value && body && Array.isArray(body.hubs) && typeof body.hubs[0] === "string") {
        hub.value = body.hubs[0];
      }
    })
    .catch(() => {});

  create.addEventListener("click", async () => {
    /** @type {Record<string, unknown>} */
    const request = { hub: hub.value.trim() || "hub", namespace: namespace.value.trim() || "/" };
    if (user.value.trim()) request.userId = user.value.trim();
    if (auth.value.trim()) {
      try {
        request.auth = JSON.parse(auth.value);
      } catch (e) {
        result.textContent = `auth is not JSON: ${e}`;
        return;
      }
    }
    create.disabled = true;
    result.textContent = "connecting…";
    try {
      const { status, body } = await call("POST", "/_emu/clients", request);
      if (status !== 201) {
        result.textContent = `refused (${status}): ${reason(body)}`;
        return;
      }
      result.textContent = `client ${body.id} connected`;
      list.prepend(panel(body));
    } catch (e) {
      result.textContent = `failed: ${e}`;
    } finally {
      create.disabled = false;
    }
  });

  /**
   * The panel of one client.
   * @param {{id: number, hub: string, namespace: string, userId: string | null, connectionId: string, socketId: string}} info
   */
  function panel(info) {
    const box = el("div", { cls: "pg-client", testid: "vc-panel" });
    box.dataset.client = String(info.id);
    box.dataset.user = info.userId ?? "";
    const head = el("div", { cls: "pg-head" });
    head.append(el("b", { text: `#${info.id} ${info.userId ?? "(no user)"}` }));
    head.append(el("span", { cls: "note", text: ` ${info.hub} ${info.namespace} · ${info.connectionId}` }));
    const state = el("span", { cls: "pg-state", testid: "vc-state", text: "connected" });
    head.append(state);
    const disconnect = el("button", { cls: "danger", testid: "vc-disconnect", text: "Disconnect" });
    head.append(disconnect);
    box.append(head);

    const row = el("div", { cls: "pg-emit" });
    const event = el("input", { testid: "vc-event" });
    event.placeholder = "event";
    const args = el("input", { testid: "vc-args" });
    args.value = "[]";
    args.placeholder = "args (JSON array)";
    const ackLabel = el("label", { cls: "pg-ack" });
    const ack = el("input", { testid: "vc-ack" });
    ack.type = "checkbox";
    ack.checked = true;
    ackLabel.append(ack, document.createTextNode(" ack"));
    const emit = el("button", { testid: "vc-emit", text: "Emit" });
    row.append(event, args, ackLabel, emit);
    box.append(row);
    const outcome = el("div", { cls: "note pg-outcome", testid: "vc-outcome" });
    box.append(outcome);
    box.append(el("div", { cls: "pg-label", text: "received" }));
    const received = el("ol", { cls: "pg-received", testid: "vc-received" });
    box.append(received);
    let removed = 0;

    /** @param {string} text @param {string} [cls] */
    function line(text, cls) {
      const item = el("li", { text });
      if (cls) item.className = cls;
      received.append(item);
      while (received.children.length > MAX_LINES) {
        received.firstElementChild?.remove();
        removed += 1;
        received.dataset.removed = String(removed);
      }
    }

    emit.addEventListener("click", async () => {
      let parsed;
      try {
        parsed = JSON.parse(args.value || "[]");
      } catch (e) {
        outcome.textContent = `args are not JSON: ${e}`;
        return;
      }
      const list = Array.isArray(parsed) ? parsed : [parsed];
      outcome.textContent = ack.checked ? "waiting for the ack…" : "sending…";
      try {
        const { status, body } = await call("POST", `/_emu/clients/${info.id}/emit`, {
          event: event.value,
          args: list,
          ack: ack.checked,
        });
        if (status !== 200) outcome.textContent = `failed (${status}): ${reason(body)}`;
        else if (ack.checked) outcome.textContent = `ack ${JSON.stringify(body.ack)}`;
        else outcome.textContent = "sent";
      } catch (e) {
        outcome.textContent = `failed: ${e}`;
      }
    });

    const stream = new EventSource(`/_emu/clients/${info.id}/events`);
    stream.onmessage = (message) => {
      let item;
      try {
        item = JSON.parse(message.data);
      } catch {
        return;
      }
      if (typeof item.disconnected === "string") {
        line(`disconnected: ${item.disconnected}`, "pg-gone");
        state.textContent = "disconnected";
        box.classList.add("ended");
        stream.close();
        return;
      }
      line(`${item.event} ${JSON.stringify(item.args)}`);
    };
    stream.addEventListener("dropped", (message) => {
      line(`(${/** @type {MessageEvent} */ (message).data} dropped: the page fell behind)`, "pg-gone");
    });

    disconnect.addEventListener("click", async () => {
      disconnect.disabled = true;
      const { status, body } = await call("DELETE", `/_emu/clients/${info.id}`);
      if (status !== 200 && status !== 404) outcome.textContent = `failed (${status}): ${reason(body)}`;
      state.textContent = "disconnected";
      box.classList.add("ended");
    });
    return box;
  }
})();
