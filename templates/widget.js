/* proprofs-bridge support widget: one script tag, no dependencies.
 *
 *   <script src="https://bridge.example.com/widget.js" data-route="support" async></script>
 *
 * Optional data attributes: data-bridge (the bridge's URL, default: where this script
 * came from), data-identity-email, data-identity-name and data-identity-hmac (a signed
 * identity computed by the host site's server), data-open ("true" opens the panel).
 * Everything renders inside a shadow root, so the page's CSS cannot reach it.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll("script[data-route]");
    script = all[all.length - 1];
  }
  if (!script) return;
  var route = script.getAttribute("data-route");
  var base = (script.getAttribute("data-bridge") || new URL(script.src, location.href).origin)
    .replace(/\/+$/, "");
  var storeKey = "proprofs-bridge:" + base + ":" + route;
  var identity = {
    email: script.getAttribute("data-identity-email"),
    name: script.getAttribute("data-identity-name"),
    hmac: script.getAttribute("data-identity-hmac")
  };

  var hostStyle = [
    "all: initial", "display: block", "position: fixed", "bottom: 0", "width: 0",
    "height: 0", "z-index: 2147483000", "visibility: visible", "opacity: 1",
    "transform: none", "pointer-events: auto"
  ].map(function (rule) { return rule + " !important"; }).join("; ");
  var host = document.createElement("proprofs-bridge-widget");
  host.setAttribute("style", hostStyle);
  var root = host.attachShadow({ mode: "open" });

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false)
        node.setAttribute(key, attrs[key] === true ? "" : attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function receipts() {
    try { return JSON.parse(localStorage.getItem(storeKey) || "[]"); } catch (e) { return []; }
  }
  function remember(receipt, subject) {
    var list = receipts().filter(function (r) { return r.receipt !== receipt; });
    list.unshift({ receipt: receipt, subject: subject, at: new Date().toISOString() });
    try { localStorage.setItem(storeKey, JSON.stringify(list.slice(0, 10))); } catch (e) { /* private mode */ }
  }

  function css(config) {
    var side = config.position === "left" ? "left" : "right";
    return [
      ":host { all: initial; }",
      "* { box-sizing: border-box; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }",
      ".launcher { position: fixed; bottom: 20px; " + side + ": 20px; padding: 12px 20px; border: 0;",
      "  border-radius: 999px; background: " + config.color + "; color: #fff; font-size: 16px;",
      "  font-weight: 600; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
      ".launcher:focus-visible, button:focus-visible, input:focus, select:focus, textarea:focus {",
      "  outline: 3px solid #9bb5ef; outline-offset: 2px; }",
      ".panel { position: fixed; bottom: 84px; " + side + ": 20px; width: min(380px, calc(100vw - 24px));",
      "  max-height: min(640px, calc(100vh - 110px)); overflow: auto; background: #fff; color: #1d2430;",
      "  border-radius: 12px; box-shadow: 0 12px 40px rgba(0,0,0,.3); padding: 18px; font-size: 15px; }",
      ".panel[hidden] { display: none; }",
      "@media (max-width: 480px) { .panel { " + side + ": 12px; bottom: 76px; width: calc(100vw - 24px); } }",
      "h2 { margin: 0 0 6px; font-size: 18px; }",
      ".intro { margin: 0 0 12px; color: #5b6472; }",
      ".head { display: flex; justify-content: space-between; align-items: start; gap: 8px; }",
      ".close { background: none; border: 0; font-size: 22px; line-height: 1; cursor: pointer; color: #5b6472; padding: 2px 6px; }",
      ".field { margin: 0 0 10px; }",
      "label { display: block; font-weight: 600; margin: 0 0 3px; }",
      "input, select, textarea { width: 100%; padding: 8px 10px; border: 1px solid #c9ced6; border-radius: 6px; font: inherit; color: inherit; background: #fff; }",
      "input[readonly] { background: #f1f3f6; }",
      "textarea { min-height: 110px; resize: vertical; }",
      ".help { margin: 2px 0 0; color: #5b6472; font-size: 13px; }",
      ".error { margin: 2px 0 0; color: #b42318; font-size: 13px; }",
      ".submit { border: 0; border-radius: 6px; padding: 9px 18px; font: inherit; font-weight: 600; color: #fff; background: " + config.color + "; cursor: pointer; }",
      ".hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }",
      ".live { margin: 10px 0 0; min-height: 1.2em; }",
      ".requests { margin: 16px 0 0; border-top: 1px solid #e3e6eb; padding-top: 10px; }",
      ".requests h3 { font-size: 15px; margin: 0 0 6px; }",
      ".request { border: 1px solid #e3e6eb; border-radius: 8px; padding: 8px 10px; margin: 0 0 8px; }",
      ".state { font-size: 13px; color: #5b6472; }",
      ".message { margin: 6px 0 0; padding: 6px 8px; border-radius: 6px; background: #f6f7f9; white-space: pre-wrap; }",
      ".message.support { background: #eaf0fd; }",
      ".meta { font-size: 12px; color: #5b6472; }",
      ".link { background: none; border: 0; padding: 0; color: " + config.color + "; text-decoration: underline; cursor: pointer; font: inherit; }"
    ].join("\n");
  }

  function build(config) {
    var s = config.strings;
    root.appendChild(el("style", { text: css(config) }));
    var launcher = el("button", { "class": "launcher", type: "button", "aria-haspopup": "dialog",
      "aria-expanded": "false", "aria-controls": "pb-panel", text: config.launcher });
    var title = el("h2", { id: "pb-title", text: config.title });
    var closeButton = el("button", { "class": "close", type: "button", "aria-label": s.close, text: "×" });
    var live = el("div", { "class": "live", role: "status", "aria-live": "polite" });
    var form = el("form", { novalidate: true, "aria-labelledby": "pb-title" });
    var inputs = {};

    config.fields.forEach(function (field) {
      var id = "pb-f-" + field.name;
      var described = [];
      var help = field.help ? el("p", { "class": "help", id: id + "-help", text: field.help }) : null;
      if (help) described.push(id + "-help");
      var error = el("p", { "class": "error", id: id + "-error", hidden: true });
      var input;
      var common = { id: id, name: field.name, required: field.required, "aria-required": field.required ? "true" : null,
        maxlength: field.max_length || null, placeholder: field.placeholder || null,
        "aria-describedby": described.join(" ") || null };
      if (field.type === "text") input = el("textarea", common);
      else if (field.type === "choice") {
        input = el("select", common, [el("option", { value: "", text: "…" })].concat(
          field.choices.map(function (c) { return el("option", { value: c.value, text: c.label }); })));
      } else if (field.type === "boolean") {
        common.type = "checkbox"; common.value = "on";
        input = el("input", common);
      } else {
        common.type = { email: "email", phone: "tel", url: "url", integer: "number", number: "number", date: "date" }[field.type] || "text";
        if (field.name === "email" || field.name === "name") common.autocomplete = field.name;
        input = el("input", common);
      }
      if (identity.hmac && identity[field.name] && (field.name === "email" || field.name === "name")) {
        input.value = identity[field.name];
        input.readOnly = true;
      }
      inputs[field.name] = { input: input, error: error, field: field };
      var label = el("label", { "for": id, text: field.label + (field.required ? " *" : "") });
      form.appendChild(el("div", { "class": "field" }, [label, input, help, error]));
    });
    var honeypot = null;
    if (config.honeypot) {
      honeypot = el("input", { type: "text", name: config.honeypot, tabindex: "-1", autocomplete: "off" });
      form.appendChild(el("div", { "class": "hp", "aria-hidden": "true" }, [honeypot]));
    }
    var submit = el("button", { "class": "submit", type: "submit", text: config.submit });
    form.appendChild(submit);
    form.appendChild(live);

    var requests = el("section", { "class": "requests", "aria-labelledby": "pb-requests-title" });
    var panel = el("div", { "class": "panel", id: "pb-panel", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "pb-title", hidden: true }, [
      el("div", { "class": "head" }, [title, closeButton]),
      config.intro ? el("p", { "class": "intro", text: config.intro }) : null,
      form, requests
    ]);
    root.appendChild(launcher);
    root.appendChild(panel);

    function focusables() {
      return Array.prototype.filter.call(
        panel.querySelectorAll("button, input, select, textarea, [tabindex]:not([tabindex='-1'])"),
        function (node) { return !node.disabled && node.tabIndex !== -1 && node.offsetParent !== null; });
    }
    function open() {
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      // Straight to the first thing to fill in (the close button comes first in tab order).
      var first = form.querySelector("input:not([readonly]):not([tabindex='-1']), select, textarea")
        || focusables()[0];
      if (first) first.focus();
      showRequests();
    }
    function close() {
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      launcher.focus();
    }
    launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
    closeButton.addEventListener("click", close);
    document.addEventListener("keydown", function (event) {
      // Escape closes the open panel wherever focus went (a disabled button drops it).
      if (event.key === "Escape" && !panel.hidden) { event.preventDefault(); close(); }
    });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") return;
      if (event.key !== "Tab") return;
      var items = focusables();
      if (!items.length) return;
      var first = items[0], last = items[items.length - 1];
      var active = root.activeElement;
      if (event.shiftKey && active === first) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && active === last) { event.preventDefault(); first.focus(); }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (submit.getAttribute("aria-disabled") === "true") return;  // already sending
      var fields = {};
      Object.keys(inputs).forEach(function (name) {
        var item = inputs[name];
        item.error.hidden = true;
        item.input.removeAttribute("aria-invalid");
        var value = item.field.type === "boolean" ? (item.input.checked ? "on" : "") : item.input.value;
        if (value !== "") fields[name] = value;
      });
      var body = { fields: fields, page_url: location.href };
      if (config.time_token) body._ts = config.time_token;
      if (honeypot) body[config.honeypot] = honeypot.value;
      if (identity.hmac && identity.email)
        body.identity = { email: identity.email, name: identity.name, hmac: identity.hmac };
      submit.setAttribute("aria-disabled", "true");
      live.textContent = s.sending;
      fetch(base + "/widget/" + encodeURIComponent(route), {
        method: "POST", headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().then(function (answer) { return { status: response.status, answer: answer }; });
      }).then(function (result) {
        submit.removeAttribute("aria-disabled");
        if (result.status === 202) {
          remember(result.answer.receipt, fields.message || fields.subject || config.title);
          form.reset();
          Object.keys(inputs).forEach(function (name) {
            if (inputs[name].input.readOnly) inputs[name].input.value = identity[name];
          });
          live.textContent = s.thanks;
          showRequests();
          return;
        }
        var errors = (result.answer && result.answer.errors) || {};
        var firstBad = null;
        Object.keys(errors).forEach(function (name) {
          var item = inputs[name];
          if (!item) return;
          item.error.textContent = errors[name].join(" ");
          item.error.hidden = false;
          item.input.setAttribute("aria-invalid", "true");
          var ids = (item.input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
          if (ids.indexOf(item.error.id) < 0) ids.push(item.error.id);
          item.input.setAttribute("aria-describedby", ids.join(" "));
          firstBad = firstBad || item.input;
        });
        live.textContent = (result.answer && result.answer.message) || s.errors;
        if (firstBad) firstBad.focus();
      }).catch(function () {
        submit.removeAttribute("aria-disabled");
        live.textContent = s.errors;
      });
    });

    function showRequests() {
      var list = receipts();
      requests.textContent = "";
      if (!list.length) { requests.hidden = true; return; }
      requests.hidden = false;
      requests.appendChild(el("h3", { id: "pb-requests-title", text: s.status_title }));
      list.forEach(function (entry) {
        var box = el("div", { "class": "request" }, [el("div", { text: entry.subject })]);
        var state = el("div", { "class": "state", text: "…" });
        box.appendChild(state);
        requests.appendChild(box);
        fetch(base + "/widget/" + encodeURIComponent(route) + "/status/" + encodeURIComponent(entry.receipt),
          { headers: { "Accept": "application/json" } })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (info) {
            if (!info) { state.textContent = "—"; return; }
            var label = info.state === "delivered" ? s.delivered + " #" + info.ticket_id : (s[info.state] || info.state);
            state.textContent = label + (info.ticket_status ? " · " + info.ticket_status : "");
            (info.messages || []).forEach(function (message) {
              box.appendChild(el("div", { "class": "message " + message.from }, [
                el("div", { "class": "meta", text: (message.name || message.from) + " · " + new Date(message.at).toLocaleString() }),
                el("div", { text: message.text })
              ]));
            });
          })
          .catch(function () { state.textContent = "—"; });
      });
    }

    if (script.getAttribute("data-open") === "true") open();
  }

  function start() {
    (document.body || document.documentElement).appendChild(host);
    fetch(base + "/widget/" + encodeURIComponent(route) + "/config", { headers: { "Accept": "application/json" } })
      .then(function (response) { if (!response.ok) throw new Error("config " + response.status); return response.json(); })
      .then(build)
      .catch(function (error) { if (window.console) console.warn("proprofs-bridge widget:", error.message); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
