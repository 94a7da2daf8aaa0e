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

  // This browser's session: the bridge answers a double click with the earlier receipt
  // only to the browser that sent it.
  var sessionValue = null;
  function session() {
    if (sessionValue) return sessionValue;
    var key = storeKey + ":session";
    try { sessionValue = localStorage.getItem(key); } catch (e) { /* private mode */ }
    if (!sessionValue || !/^[0-9a-f]{36}$/.test(sessionValue)) {
      var bytes = new Uint8Array(18);
      crypto.getRandomValues(bytes);
      sessionValue = Array.prototype.map.call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
      try { localStorage.setItem(key, sessionValue); } catch (e) { /* private mode: this page's */ }
    }
    return sessionValue;
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
      ".files { list-style: none; margin: 4px 0 0; padding: 0; font-size: 13px; }",
      ".files li { display: flex; justify-content: space-between; align-items: center; gap: 8px; padding: 2px 0; }",
      ".files .remove { border: 0; background: none; color: #b42318; cursor: pointer; font: inherit; padding: 2px 4px; }",
      ".request .file { font-size: 13px; margin-top: 4px; }",
      ".error { margin: 2px 0 0; color: #b42318; font-size: 13px; }",
      ".submit { border: 0; border-radius: 6px; padding: 9px 18px; font: inherit; font-weight: 600; color: #fff; background: " + config.color + "; cursor: pointer; }",
      ".hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }",
      ".live { margin: 10px 0 0; min-height: 1.2em; }",
      ".requests { margin: 16px 0 0; border-top: 1px solid #e3e6eb; padding-top: 10px; }",
      ".requests h3 { font-size: 15px; margin: 0 0 6px; }",
      ".request { border: 1px solid #e3e6eb; border-radius: 8px; padding: 8px 10px; margin: 0 0 8px; }",
      ".state { font-size: 13px; color: #5b6472; }",
      ".message { margin: 6px 0 0; padding: 6px 8px; border-radius: 6px; background: #f6f7f9; white-space: pre-wrap; overflow-wrap: anywhere; }",
      ".request, .file { overflow-wrap: anywhere; }",
      ".message.support { background: #eaf0fd; }",
      ".meta { font-size: 12px; color: #5b6472; }",
      ".link { background: none; border: 0; padding: 0; color: " + config.color + "; text-decoration: underline; cursor: pointer; font: inherit; }"
    ].join("\n");
  }

  /* CAPTCHA: the provider's script renders its challenge into an element of the page
   * itself (none of them works inside a shadow root), shown in the panel through a slot.
   * Turnstile, hCaptcha and reCAPTCHA v2 share one explicit-render API; reCAPTCHA v3
   * scores each post with execute() and shows nothing. Tokens are single-use: the
   * challenge is reset after every post. */
  var CAPTCHA_GLOBALS = { turnstile: "turnstile", hcaptcha: "hcaptcha", recaptcha: "grecaptcha" };

  function setUpCaptcha(spec, strings) {
    var box = document.createElement("div");
    box.setAttribute("slot", "captcha");
    box.setAttribute("style", "display: block !important; visibility: visible !important; " +
      "opacity: 1 !important; min-height: 0 !important");
    host.appendChild(box);
    var error = el("p", { "class": "error", id: "pb-captcha-error", hidden: true });
    var field = el("div", { "class": "field captcha", hidden: spec.mode === "score" },
      [el("slot", { name: "captcha" }), error]);
    var state = { api: null, id: null, token: "", failed: false };
    function show(message) { error.textContent = message; error.hidden = !message; if (message) field.hidden = false; }
    var ready = "proprofsBridgeCaptcha" + Math.random().toString(36).slice(2);
    window[ready] = function () {
      state.api = window[CAPTCHA_GLOBALS[spec.provider]];
      if (spec.mode === "score" || !state.api) return;
      state.id = state.api.render(box, {
        sitekey: spec.site_key,
        callback: function (token) { state.token = token; show(""); },
        "expired-callback": function () { state.token = ""; },
        "error-callback": function () { state.token = ""; }
      });
    };
    var tag = document.createElement("script");
    tag.src = spec.script + (spec.script.indexOf("?") < 0 ? "?" : "&") + "onload=" + ready +
      "&render=" + (spec.mode === "score" ? encodeURIComponent(spec.site_key) : "explicit");
    tag.async = true;
    tag.onerror = function () { state.failed = true; };
    (document.head || document.documentElement).appendChild(tag);
    return {
      field: field,
      show: show,
      /* Hand a fresh token to done(token), or say why there is none and hand nothing. */
      token: function (done) {
        if (!state.api) { show(strings.captcha_unavailable); return; }
        if (spec.mode === "score") {
          state.api.ready(function () {
            state.api.execute(spec.site_key, { action: "support" }).then(done, function () {
              show(strings.captcha_unavailable);
            });
          });
          return;
        }
        var token = state.token || state.api.getResponse(state.id) || "";
        if (!token) { show(strings.captcha); return; }
        done(token);
      },
      reset: function () {
        state.token = "";
        if (state.api && state.id !== null && spec.mode !== "score") state.api.reset(state.id);
      }
    };
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
      var picked = null;
      if (field.type === "file") {
        // A picker (several files if allowed) and a list of what is attached; an image
        // pasted anywhere in the panel joins the first file field's list.
        common.type = "file";
        common.multiple = config.files.max_files > 1;
        common.accept = config.files.accept;
        input = el("input", common);
        picked = el("ul", { "class": "files", "aria-live": "polite" });
        help = help || el("p", { "class": "help", id: id + "-help", text: config.files.hint });
        if (described.indexOf(id + "-help") < 0) { described.push(id + "-help"); input.setAttribute("aria-describedby", described.join(" ")); }
      } else if (field.type === "text") input = el("textarea", common);
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
      var item = inputs[field.name] = { input: input, error: error, field: field, files: [], list: picked };
      if (picked) {
        input.addEventListener("change", function () {
          Array.prototype.forEach.call(input.files || [], function (file) { attach(item, file); });
          input.value = "";
        });
      }
      var label = el("label", { "for": id, text: field.label + (field.required ? " *" : "") });
      form.appendChild(el("div", { "class": "field" }, [label, input, picked, help, error]));
    });

    function attach(item, file) {
      item.files.push(file);
      var entry = el("li", {}, [el("span", { text: file.name + " (" + size(file.size) + ")" })]);
      var remove = el("button", { type: "button", "class": "remove", text: s.remove,
        "aria-label": s.remove + " " + file.name });
      remove.addEventListener("click", function () {
        item.files.splice(item.files.indexOf(file), 1);
        entry.parentNode.removeChild(entry);
      });
      entry.appendChild(remove);
      item.list.appendChild(entry);
    }
    function size(bytes) {
      if (bytes < 1000) return bytes + (bytes === 1 ? " byte" : " bytes");
      if (bytes < 1000000) return (bytes / 1000).toFixed(1) + " KB";
      return (bytes / 1000000).toFixed(1) + " MB";
    }
    function clearFiles() {
      Object.keys(inputs).forEach(function (name) {
        var item = inputs[name];
        if (!item.list) return;
        item.files = [];
        item.list.textContent = "";
      });
    }
    var fileField = config.fields.filter(function (f) { return f.type === "file"; })[0];
    var honeypot = null;
    if (config.honeypot) {
      honeypot = el("input", { type: "text", name: config.honeypot, tabindex: "-1", autocomplete: "off" });
      form.appendChild(el("div", { "class": "hp", "aria-hidden": "true" }, [honeypot]));
    }
    var captcha = config.captcha ? setUpCaptcha(config.captcha, s) : null;
    if (captcha) form.appendChild(captcha.field);
    var submit = el("button", { "class": "submit", type: "submit", text: config.submit });
    form.appendChild(submit);
    form.appendChild(live);

    var requests = el("section", { "class": "requests", "aria-labelledby": "pb-requests-title" });
    var panel = el("div", { "class": "panel", id: "pb-panel", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "pb-title", hidden: true }, [
      el("div", { "class": "head" }, [title, closeButton]),
      config.intro ? el("p", { "class": "intro", text: config.intro }) : null,
      config.reply_time ? el("p", { "class": "intro reply-time", text: config.reply_time.text }) : null,
      form, requests
    ]);
    root.appendChild(launcher);
    root.appendChild(panel);
    if (fileField) {
      panel.addEventListener("paste", function (event) {
        var items = (event.clipboardData && event.clipboardData.items) || [];
        var pasted = 0;
        Array.prototype.forEach.call(items, function (entry) {
          if (entry.kind !== "file") return;
          var file = entry.getAsFile();
          if (!file) return;
          pasted += 1;
          var type = file.type || "application/octet-stream";
          var name = file.name && file.name !== "image.png" ? file.name
            : s.pasted + "-" + new Date().toISOString().replace(/[:.]/g, "-") + "." + (type.split("/")[1] || "bin");
          attach(inputs[fileField.name], new File([file], name, { type: type }));
        });
        if (pasted) event.preventDefault();
      });
    }

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
        if (item.field.type === "file") return;  // sent as parts of their own
        var value = item.field.type === "boolean" ? (item.input.checked ? "on" : "") : item.input.value;
        if (value !== "") fields[name] = value;
      });
      var body = { fields: fields, page_url: location.href, session: session() };
      if (config.time_token) body._ts = config.time_token;
      if (honeypot) body[config.honeypot] = honeypot.value;
      if (identity.hmac && identity.email)
        body.identity = { email: identity.email, name: identity.name, hmac: identity.hmac };
      if (!captcha) { send(body); return; }
      captcha.show("");
      captcha.token(function (token) { fields[config.captcha.field] = token; send(body); });
    });

    function send(body) {
      var fields = body.fields;
      submit.setAttribute("aria-disabled", "true");
      live.textContent = s.sending;
      var files = [];
      Object.keys(inputs).forEach(function (name) {
        inputs[name].files.forEach(function (file) { files.push([name, file]); });
      });
      var request = { method: "POST", headers: { "Accept": "application/json" } };
      if (files.length) {
        // With files: the same JSON in a part named payload, each file a part of its field.
        request.body = new FormData();
        request.body.append("payload", JSON.stringify(body));
        files.forEach(function (pair) { request.body.append(pair[0], pair[1], pair[1].name); });
      } else {
        request.headers["Content-Type"] = "application/json";
        request.body = JSON.stringify(body);
      }
      fetch(base + "/widget/" + encodeURIComponent(route), request).then(function (response) {
        return response.json().then(function (answer) { return { status: response.status, answer: answer }; });
      }).then(function (result) {
        submit.removeAttribute("aria-disabled");
        if (captcha) captcha.reset();  // its token is spent, whatever the answer
        if (result.status === 202) {
          remember(result.answer.receipt, fields.message || fields.subject || config.title);
          form.reset();
          clearFiles();
          Object.keys(inputs).forEach(function (name) {
            if (inputs[name].input.readOnly) inputs[name].input.value = identity[name];
          });
          live.textContent = s.thanks;
          showRequests();
          return;
        }
        var errors = (result.answer && result.answer.errors) || {};
        if (captcha && errors.captcha) captcha.show(errors.captcha.join(" "));
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
        if (captcha) captcha.reset();
        live.textContent = s.errors;
      });
    }

    function showRequests() {
      if (config.identity && identity.hmac && identity.email) showMine();
      else showReceipts();
    }
    // The requests this browser sent (their receipts are kept here).
    function showReceipts() {
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
            (info.files || []).forEach(function (file) {
              box.appendChild(el("div", { "class": "file" }, [
                el("a", { href: new URL(file.url, base).href, text: file.name, download: file.name, rel: "noopener" }),
                el("span", { text: " · " + size(file.size) })
              ]));
            });
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

    // A verified requester (the host site signed their email): every ticket the bridge
    // made for them, from any device, newest first, each with its public thread.
    function showMine() {
      fetch(base + "/widget/" + encodeURIComponent(route) + "/mine", {
        method: "POST",
        headers: { "Accept": "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ identity: { email: identity.email, hmac: identity.hmac } })
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (info) {
          if (!info) { showReceipts(); return; }  // no history kept: this browser's own
          requests.textContent = "";
          if (!info.tickets.length) { requests.hidden = true; return; }
          requests.hidden = false;
          requests.appendChild(el("h3", { id: "pb-requests-title", text: s.status_title }));
          info.tickets.forEach(function (ticket) {
            var box = el("div", { "class": "request" }, [
              el("div", { text: ticket.subject }),
              el("div", { "class": "state", text: s.delivered + " #" + ticket.ticket_id + " · " + ticket.status })
            ]);
            ticket.messages.forEach(function (message) {
              box.appendChild(el("div", { "class": "message " + message.from }, [
                el("div", { "class": "meta", text: (message.name || message.from) + " · " + new Date(message.at).toLocaleString() }),
                el("div", { text: message.text })
              ]));
            });
            requests.appendChild(box);
          });
        })
        .catch(showReceipts);
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
