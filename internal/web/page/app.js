// perceptron's web page: pick one of the served models, draw a digit or drop a photo as that model takes it and see
// the prediction; train a model with the admin token and follow its curves; list, activate and roll back the chosen
// model's versions. Plain browser JavaScript with no build step. Nothing
// here assigns HTML strings (the page's Content-Security-Policy requires Trusted Types for that): every text from
// the server goes into the page as text.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg"; // a namespace name, never fetched

  // el builds an element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      e.setAttribute(k, v === true ? "" : String(v));
    }
    e.append(...children.filter((c) => c !== null && c !== undefined));
    return e;
  }

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const pct = (p) => (p * 100).toFixed(p >= 0.9995 || p < 0.0005 ? 0 : 1) + "%";
  const fixed = (x, n) => (Number.isFinite(x) ? x.toFixed(n) : "–");

  // ---------------------------------------------------------------------------------------------------------------
  // Talking to the API. Errors are RFC 9457 problems; ApiError carries a sentence made from one.

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function problemMessage(resp) {
    let problem = null;
    try {
      problem = JSON.parse(await resp.text());
    } catch {
      // Not JSON: fall back to the status line.
    }
    const title = (problem && problem.title) || resp.statusText || "Error";
    let msg = `${title} (${resp.status})`;
    if (problem && problem.detail) msg += `: ${problem.detail}`;
    else if (problem && typeof problem.error === "string") msg += `: ${problem.error}`; // the /v2 routes' errors
    if (resp.status === 401) msg = `The admin token was refused (${resp.status}). Check it and enter it again.`;
    if (resp.status === 404 && problem && problem.detail === "no such route") {
      msg = "This address does not serve the admin API (the server may run it on a separate ADMIN_ADDR).";
    }
    const retry = resp.headers.get("Retry-After");
    if (retry) msg += ` Try again in ${retry} s.`;
    return msg;
  }

  let adminToken = "";

  async function api(method, path, opts = {}) {
    const headers = {};
    let body = opts.body;
    if (opts.admin) headers.Authorization = "Bearer " + adminToken;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    if (opts.contentType) headers["Content-Type"] = opts.contentType;
    let resp;
    try {
      resp = await fetch(path, { method, headers, body, cache: "no-store", credentials: "same-origin" });
    } catch (err) {
      throw new ApiError(`Could not reach the server (${err.message}).`, 0);
    }
    if (!resp.ok) throw new ApiError(await problemMessage(resp), resp.status);
    return resp.json();
  }

  function showError(id, msg) {
    const box = $(id);
    box.textContent = msg || "";
    box.hidden = !msg;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The models: the repository index lists every model by name with its state, served version, labels and input.
  // The chosen model decides the page's words, its input widget (a drawing pad for digit models, preprocessed as
  // MNIST; a photo picker for resize models), its class bars, where predictions go, and which versions are listed.

  let models = []; // the index, default model first
  let current = null; // the chosen model's entry
  let indexRetry = 0; // the timer that reads the index again after it failed

  const isPhoto = (m) => Boolean(m && m.input && m.input.preprocess === "resize");
  const served = (m) => Boolean(m && m.state === "READY");

  // loadIndex reads the index, keeps the chosen model chosen (else the default), and shows what changed.
  async function loadIndex() {
    let list;
    try {
      list = await api("POST", "/v2/repository/index", { json: {} });
    } catch (err) {
      $("serving-version").textContent = `no model (${err.message})`;
      if (!indexRetry) indexRetry = setTimeout(() => { indexRetry = 0; loadIndex(); }, 5000); // a restart, a blip
      return;
    }
    models = Array.isArray(list) ? list : [];
    const select = $("model");
    select.replaceChildren(...models.map((m) => el("option", { value: m.name },
      served(m) ? m.name : `${m.name} (no active version)`)));
    const keep = current && models.find((m) => m.name === current.name);
    const next = keep || models.find((m) => m.default) || models[0] || null;
    if (next) select.value = next.name;
    chooseModel(next);
  }

  // chooseModel shows model m. Switching to another model starts afresh (what was drawn or chosen was for the other
  // model's input); the same model with a new version keeps the input and asks again.
  function chooseModel(m) {
    // A model that became served (or stopped) has a new input and labels: that is a switch too.
    const switched = !current || !m || current.name !== m.name || current.state !== m.state;
    const before = current;
    current = m;
    $("serving-version").textContent = !m ? "no model" : served(m) ? `${m.name} ${m.version}` : `${m.name}: no active version`;
    if (!m) return;
    const photo = isPhoto(m);
    const labels = m.labels || [];
    $("model-about").textContent = !served(m) ? "Not served: no version of this model is active."
      : `${labels.length} classes${photo ? `: ${labels.join(", ")}` : ""}; input ${describeInput(m.input)}.`;
    if (switched) {
      $("train-model").value = m.name;
      fillDatasets();
      $("models-name").textContent = m.name;
      dropzone.classList.toggle("photo", photo);
      pad.hidden = photo;
      $("clear").textContent = photo ? "Remove photo" : "Clear";
      $("drop-hint").textContent = photo ? "Drop a photo here" : "Drop an image here";
      $("file-label").textContent = photo ? "Choose a photo" : "Or choose an image file";
      $("try-hint").textContent = photo
        ? `Choose a photo, or drop one on the box: the model tells ${labels.length > 1 ? labels.slice(0, -1).join(", ") + " and " + labels[labels.length - 1] : "its classes"} apart.`
        : "Draw a digit in the box with a mouse, pen or finger, or choose an image file (or drop one on the box). " +
          "The prediction follows your pen.";
      buildBars(labels);
      clearAll();
      if (adminToken) loadModels().catch((err) => showError("admin-error", err.message));
    } else if (before && before.version !== m.version && (inked || chosenFile)) {
      predictSoon();
    }
    const w = (m.input && m.input.width) || 28, h = (m.input && m.input.height) || 28;
    $("seen-size").textContent = `${w} × ${h}`;
  }

  function describeInput(input) {
    if (!input) return "unknown";
    const colour = input.channels === 3 ? "colour" : input.channels === 1 ? "gray" : "";
    return `${input.width} × ${input.height}${colour ? " " + colour : ""}, ` +
      (input.preprocess === "resize" ? "a photo resized" : "a digit centred as in MNIST");
  }

  $("model").addEventListener("change", (e) => chooseModel(models.find((m) => m.name === e.target.value) || null));

  // ---------------------------------------------------------------------------------------------------------------
  // Try it: the drawing pad. The canvas is white only through CSS: its pixels stay transparent where nobody drew, so
  // the PNG sent is exactly what canvas.toBlob exports, as any drawing app would upload it.

  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const dropzone = $("dropzone");
  const preview = $("preview");
  const INK = "#111111";
  const LINE_WIDTH = pad.width / 12;

  let inked = false; // something is drawn
  let chosenFile = null; // a file picked or dropped, predicted instead of the canvas
  let strokeId = null; // pointerId of the stroke in progress
  let last = null;

  function point(e) {
    const r = pad.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * pad.width) / r.width, y: ((e.clientY - r.top) * pad.height) / r.height };
  }

  function dot(p) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fillStyle = INK;
    ctx.fill();
  }

  function segment(a, b) {
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.strokeStyle = INK;
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.stroke();
  }

  function setInked(on) {
    dropzone.classList.toggle("inked", on);
  }

  pad.addEventListener("pointerdown", (e) => {
    if (strokeId !== null || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    if (chosenFile) forgetFile();
    strokeId = e.pointerId;
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    dot(last);
    inked = true;
    setInked(true);
    requestPrediction();
  });

  pad.addEventListener("pointermove", (e) => {
    if (e.pointerId !== strokeId) return;
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = point(ev);
      segment(last, p);
      last = p;
    }
    requestPrediction();
  });

  function endStroke(e) {
    if (e.pointerId !== strokeId) return;
    strokeId = null;
    last = null;
    predictSoon();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  function forgetFile() {
    chosenFile = null;
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.removeAttribute("src");
    preview.hidden = true;
  }

  function clearAll() {
    ctx.clearRect(0, 0, pad.width, pad.height);
    inked = false;
    forgetFile();
    setInked(false);
    $("file").value = "";
    cancelPredictions();
    resetResult();
  }
  $("clear").addEventListener("click", clearAll);

  // useFile predicts a picked or dropped file. Its bytes are read once, so a later prediction (after a model is
  // activated, say) still has them when the file has since changed or gone.
  async function useFile(file) {
    if (!file) return;
    let bytes;
    reading++;
    updatePending();
    try {
      bytes = await file.arrayBuffer();
    } catch (err) {
      showError("predict-error", `Could not read ${file.name}: ${err.message}`);
      return;
    } finally {
      reading--;
      updatePending();
    }
    ctx.clearRect(0, 0, pad.width, pad.height);
    inked = false;
    forgetFile();
    chosenFile = new File([bytes], file.name, { type: file.type });
    preview.src = URL.createObjectURL(chosenFile);
    preview.alt = `The image you chose: ${file.name}`;
    preview.hidden = false;
    setInked(true);
    predictSoon();
  }
  $("file").addEventListener("change", (e) => useFile(e.target.files[0]));
  // Small images, such as MNIST's own 28x28, are shown as pixels rather than blurred.
  preview.addEventListener("load", () => preview.classList.toggle("small", preview.naturalWidth < 100));

  // Dropping anywhere on the page must not navigate away from it; dropping on the pad predicts the file.
  for (const type of ["dragover", "drop"]) document.addEventListener(type, (e) => e.preventDefault());
  dropzone.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    dropzone.classList.add("over");
  });
  // A photo model's box has no pad to draw on: clicking it opens the file picker.
  dropzone.addEventListener("click", () => {
    if (isPhoto(current)) $("file").click();
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (e) => {
    e.preventDefault();
    dropzone.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    $("file").value = ""; // the picker no longer names the image shown
    if (file) useFile(file);
    else showError("predict-error", "Drop an image file (PNG, JPEG, GIF, BMP, TIFF or WebP).");
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Live prediction, throttled: at most one request in flight and one every THROTTLE_MS while drawing, and one right
  // after each stroke ends. #summary's data-pending is "0" once the answer shown is the one for what is on screen.

  const THROTTLE_MS = 300;
  let dirty = false;
  let inFlight = false;
  let timer = 0;
  let lastSent = -Infinity;
  let generation = 0; // bumped by Clear, so an answer to an old drawing is dropped
  let reading = 0; // files being read

  function updatePending() {
    $("summary").dataset.pending = dirty || inFlight || timer || reading ? "1" : "0";
  }

  function requestPrediction() {
    dirty = true;
    schedule();
  }

  // predictSoon asks for a prediction now (or as soon as the one in flight returns), skipping the throttle.
  function predictSoon() {
    dirty = true;
    lastSent = -Infinity;
    if (timer) {
      clearTimeout(timer);
      timer = 0;
    }
    schedule();
  }

  function cancelPredictions() {
    generation++;
    dirty = false;
    if (timer) clearTimeout(timer);
    timer = 0;
    updatePending();
  }

  function schedule() {
    if (dirty && !inFlight && !timer) {
      const wait = Math.max(0, lastSent + THROTTLE_MS - performance.now());
      timer = setTimeout(() => {
        timer = 0;
        send();
      }, wait);
    }
    updatePending();
  }

  async function body() {
    if (!served(current)) return null;
    if (chosenFile) {
      const form = new FormData();
      form.append("image", chosenFile, chosenFile.name);
      return { body: form };
    }
    if (!inked) return null;
    const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
    return { body: blob, contentType: "image/png" };
  }

  async function send() {
    if (!dirty || inFlight) return;
    dirty = false;
    inFlight = true;
    lastSent = performance.now();
    const gen = generation;
    updatePending();
    try {
      const req = await body();
      if (req) {
        const res = await api("POST", `/predict?model=${encodeURIComponent(current.name)}&debug=true&top_k=3`, req);
        if (gen === generation) {
          showError("predict-error", "");
          showResult(res);
        }
      }
    } catch (err) {
      if (gen === generation) showError("predict-error", `The prediction failed. ${err.message}`);
    } finally {
      inFlight = false;
      schedule();
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Showing a prediction: the label, the bars of every class and the input the model saw.

  const bars = new Map(); // label -> {li, fill, value}

  function idleText() {
    if (current && !served(current)) return `Model ${current.name} has no active version; an operator can activate one below.`;
    return isPhoto(current) ? "Choose or drop a photo to see what the model thinks." : "Draw a digit to see what the model thinks.";
  }

  // buildBars makes one bar per class of the chosen model, named by its labels, in output order.
  function buildBars(labels) {
    bars.clear();
    const list = $("bars");
    list.replaceChildren();
    // The names' column fits the longest label (up to a limit; longer ones are cut, with the whole in a tooltip).
    const longest = Math.max(2, ...labels.map((l) => [...l].length));
    // Bold letters run wider than the digit a ch measures, hence the margin.
    list.style.setProperty("--name-width", `${(Math.min(16, longest) * 1.15).toFixed(1)}ch`);
    for (const label of labels) {
      const fill = el("div", { class: "fill" });
      const value = el("span", { class: "value" });
      const li = el("li", {}, el("span", { class: "name", title: label }, label),
        el("div", { class: "track", "aria-hidden": "true" }, fill), value);
      list.append(li);
      bars.set(label, { li, fill, value });
    }
  }

  function resetResult() {
    $("label").textContent = "–";
    $("confidence").textContent = "";
    $("summary-text").textContent = idleText();
    for (const b of bars.values()) {
      b.fill.style.width = "0%";
      b.value.textContent = "";
      b.li.classList.remove("best");
    }
    const seen = $("seen");
    seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
    seen.setAttribute("aria-label", "No input yet");
    showError("predict-error", "");
  }

  function showResult(res) {
    const p = res.predictions[0];
    const top = p.top || [];
    $("model-version").textContent = `${res.model.name} ${res.model.version}`;
    $("serving-version").textContent = `${res.model.name} ${res.model.version}`;
    if (p.reason === "no_digit_found") {
      // The service found nothing that could be a digit and gives no label: say so, and show no guess.
      $("label").textContent = "no digit found";
      $("confidence").textContent = "";
      $("summary-text").textContent = "No digit found: the picture has no ink that could be a digit.";
      for (const b of bars.values()) {
        b.fill.style.width = "0%";
        b.value.textContent = "";
        b.li.classList.remove("best");
      }
      drawSeen(p.input);
      return;
    }
    $("label").textContent = p.label;
    $("confidence").textContent = `${pct(p.confidence)} sure`;
    let text = isPhoto(current) ? (p.reason === "not_a_digit"
      ? `Unlike every picture the model learned from, it seems (best guess ${p.label})`
      : p.accepted === false
        ? `Not sure: the best guess, ${p.label}, is below the ${pct(res.min_confidence)} the model needs`
        : `The model says ${p.label}`) : p.reason === "not_a_digit"
      ? `Not a digit, it seems: the picture is unlike every digit the model learned from (best guess ${p.label})`
      : p.accepted === false
        ? `Not sure this is a digit: the best guess, ${p.label}, is below the ${pct(res.min_confidence)} the model needs`
        : `The model reads ${p.label}`;
    if (top.length > 1) text += `; next best ${top[1].label} at ${pct(top[1].probability)}`;
    $("summary-text").textContent = text + ".";

    const entries = Object.entries(p.probabilities);
    if (entries.length !== bars.size || entries.some(([label]) => !bars.has(label))) {
      buildBars(entries.map(([label]) => label));
    }
    for (const [label, prob] of entries) {
      const b = bars.get(label);
      b.fill.style.width = `${(prob * 100).toFixed(2)}%`;
      b.value.textContent = pct(prob);
      b.li.classList.toggle("best", label === p.label);
    }
    drawSeen(p.input);
  }

  // drawSeen paints the model's input as it saw it, row by row: for a digit model white ink on black. An input with
  // more values than pixels (colour) is not drawn: its layout is the model's business.
  function drawSeen(input) {
    const seen = $("seen");
    if (!Array.isArray(input) || input.length === 0) return;
    const w = (current && current.input && current.input.width) || Math.round(Math.sqrt(input.length));
    const h = (current && current.input && current.input.height) || w;
    if (w * h !== input.length) {
      seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
      seen.setAttribute("aria-label", "The model's input is in colour and not drawn here");
      return;
    }
    seen.width = w;
    seen.height = h;
    const g = seen.getContext("2d");
    const img = g.createImageData(w, h);
    for (let i = 0; i < input.length; i++) {
      const v = Math.max(0, Math.min(255, Math.round(input[i] * 255)));
      img.data[4 * i] = v;
      img.data[4 * i + 1] = v;
      img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
    $("seen-size").textContent = `${w} × ${h}`;
    seen.setAttribute("aria-label", `The ${w} by ${h} image the model saw`);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Train it: the admin token, kept in this tab's sessionStorage only.

  const TOKEN_KEY = "perceptron.adminToken";

  function setAdmin(on) {
    $("train-fields").disabled = !on;
    $("refresh-models").disabled = !on;
    $("token-state").textContent = on ? "Token accepted." : "";
  }

  async function useToken(tok) {
    adminToken = tok;
    try {
      await loadModels();
    } catch (err) {
      adminToken = "";
      sessionStorage.removeItem(TOKEN_KEY);
      setAdmin(false);
      showError("admin-error", err.message);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, tok);
    showError("admin-error", "");
    setAdmin(true);
    loadDatasets();
    resumeJob();
  }

  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const tok = $("token").value.trim();
    if (!tok) {
      showError("admin-error", "Enter the admin token (the server logs one at start when ADMIN_TOKEN is not set).");
      $("token").focus();
      return;
    }
    useToken(tok);
  });

  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    adminToken = "";
    $("token").value = "";
    stopPolling();
    watched = null;
    setAdmin(false);
    showError("admin-error", "");
    const body = $("models").tBodies[0];
    body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" },
      "Enter the admin token to list the model versions.")));
  });

  let datasets = null; // the data sets the server listed, once the token is accepted

  // fitsModel reports whether data set d can train a new version of model m: a photo model learns from uploaded
  // sets prepared as photos ("resize", gray or colour as each set was recorded), a digit model from mnist and from
  // sets prepared as MNIST digits. Another set would make a model whose input differs from the one chosen.
  const fitsModel = (d, m) => isPhoto(m)
    ? d.id !== "mnist" && d.preprocess === "resize"
    : d.id === "mnist" || d.preprocess === "mnist";

  // fillDatasets lists the data sets that fit the chosen model, keeping the one picked when it still fits.
  function fillDatasets() {
    if (!datasets) return;
    const select = $("dataset");
    const picked = select.value;
    const fit = datasets.filter((d) => fitsModel(d, current));
    const kind = (d) => d.preprocess !== "resize" ? "" : d.channels === 3 ? ", colour" : ", gray";
    select.replaceChildren(...fit.map((d) => el("option", { value: d.id },
      d.id === "mnist" ? "mnist (built in)" : `${d.name || d.id} (${d.examples} examples${kind(d)})`)));
    if (fit.length === 0) {
      select.replaceChildren(el("option", { value: "" }, "none fits this model: upload photos to train it"));
    }
    if (fit.some((d) => d.id === picked)) select.value = picked;
  }

  async function loadDatasets() {
    try {
      const r = await api("GET", "/datasets", { admin: true });
      datasets = Array.isArray(r.datasets) ? r.datasets : [];
      fillDatasets();
    } catch (err) {
      showError("admin-error", `Could not list the data sets. ${err.message}`);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Starting, following and cancelling a job.

  function readForm() {
    const hiddenText = $("hidden").value.trim();
    const hidden = hiddenText === "" ? [] : hiddenText.split(/[\s,]+/).filter(Boolean).map(Number);
    if (hidden.some((h) => !Number.isInteger(h) || h < 1)) {
      throw { field: "hidden", message: "Hidden layers: write whole widths separated by commas, such as 256, 128." };
    }
    const number = (id, integer) => {
      const input = $(id);
      const label = document.querySelector(`label[for="${id}"]`).textContent;
      const v = Number(input.value);
      if (input.value.trim() === "" || !input.checkValidity() || (integer && !Number.isInteger(v))) {
        throw { field: id, message: `${label}: ${input.validationMessage || "enter a valid number"}.` };
      }
      return v;
    };
    const name = $("train-model").value.trim();
    if (name && !$("train-model").checkValidity()) {
      throw { field: "train-model", message: "Model name: letters, digits, dots, dashes and underscores, up to 64, starting with a letter or digit." };
    }
    if (!$("dataset").value) {
      throw { field: "dataset", message: "Data set: none fits the chosen model; upload a set of its kind first." };
    }
    return {
      model: name || undefined,
      dataset: $("dataset").value,
      hidden,
      activation: $("activation").value,
      optimizer: $("optimizer").value,
      learning_rate: number("learning_rate", false),
      batch_size: number("batch_size", true),
      epochs: number("epochs", true),
      limit: number("limit", true),
      activate: $("activate").value,
    };
  }

  let watched = null; // id of the job shown
  let pollTimer = 0;
  let pollGeneration = 0;

  $("train-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    let req;
    try {
      req = readForm();
    } catch (bad) {
      showError("admin-error", bad.message);
      $(bad.field).focus();
      return;
    }
    $("start").disabled = true;
    try {
      const job = await api("POST", "/train", { json: req, admin: true });
      showError("admin-error", "");
      watch(job);
    } catch (err) {
      showError("admin-error", `The job was not started. ${err.message}`);
    } finally {
      $("start").disabled = false;
    }
  });

  $("cancel").addEventListener("click", async () => {
    if (!watched) return;
    $("cancel").disabled = true;
    try {
      renderJob(await api("DELETE", `/train/${encodeURIComponent(watched)}`, { admin: true }));
    } catch (err) {
      showError("admin-error", `The job was not cancelled. ${err.message}`);
    }
  });

  const finished = (job) => ["succeeded", "failed", "cancelled"].includes(job.status);

  function stopPolling() {
    pollGeneration++;
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = 0;
  }

  function watch(job) {
    stopPolling();
    watched = job.id;
    renderJob(job);
    if (!finished(job)) poll(job.id, pollGeneration);
  }

  function poll(id, gen) {
    pollTimer = setTimeout(async () => {
      pollTimer = 0;
      if (gen !== pollGeneration) return;
      let job;
      try {
        job = await api("GET", `/train/${encodeURIComponent(id)}`, { admin: true });
      } catch (err) {
        if (gen !== pollGeneration) return;
        showError("admin-error", `Lost track of the job. ${err.message}`);
        if (err.status === 401 || err.status === 404) return;
        poll(id, gen); // a network blip: keep trying
        return;
      }
      if (gen !== pollGeneration) return;
      renderJob(job);
      if (finished(job)) {
        loadModels().catch((err) => showError("admin-error", err.message));
        loadIndex();
      } else {
        poll(id, gen);
      }
    }, 1000);
  }

  // resumeJob shows the running job, or else the latest one, when the token is entered (say after a reload).
  async function resumeJob() {
    try {
      const { jobs } = await api("GET", "/train", { admin: true });
      if (!jobs || jobs.length === 0 || watched) return;
      jobs.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
      watch(jobs.find((j) => !finished(j)) || jobs[0]);
    } catch (err) {
      showError("admin-error", `Could not list the training jobs. ${err.message}`);
    }
  }

  function duration(s) {
    if (!Number.isFinite(s) || s <= 0) return "–";
    if (s < 60) return `${Math.ceil(s)} s`;
    const m = Math.floor(s / 60);
    return `${m} min ${Math.round(s - 60 * m)} s`;
  }

  function renderJob(job) {
    const p = job.progress || {};
    const history = job.history || [];
    const epochs = p.epochs || (job.request && job.request.epochs) || history.length;
    let status = `Job ${job.id}: ${job.status}`;
    switch (job.status) {
      case "queued":
        status += ", waiting for the job before it.";
        break;
      case "running":
        status += p.epoch ? `, epoch ${p.epoch} of ${epochs}.` : ", loading the data.";
        break;
      case "succeeded":
        status += `. ${job.request && job.request.model ? `Model ${job.request.model}, version` : "Model"} ${job.model_version} ` +
          (job.activated ? "is now serving" : "was stored, not activated");
        status += job.decision ? ` (${job.decision}).` : ".";
        break;
      case "failed":
        status += `: ${job.error || "no reason given"}.`;
        break;
      case "cancelled":
        status += ".";
        break;
    }
    const line = $("job-status");
    line.textContent = status;
    line.className = `job-status ${job.status}`;
    $("job-progress").value = job.status === "succeeded" ? 1 : Math.max(0, Math.min(1, p.fraction || 0));
    $("cancel").disabled = finished(job);

    const lastEpoch = history[history.length - 1];
    $("fig-epoch").textContent = p.epoch ? `${p.epoch} / ${epochs}` : "–";
    $("fig-loss").textContent = fixed(job.status === "running" ? p.loss : lastEpoch && lastEpoch.loss, 4);
    $("fig-train").textContent = Number.isFinite(p.train_accuracy) && p.epoch ? pct(p.train_accuracy) : "–";
    $("fig-val").textContent = lastEpoch && lastEpoch.val_accuracy ? pct(lastEpoch.val_accuracy) : "–";
    $("fig-eta").textContent = job.status === "running" ? duration(p.eta_seconds) : "–";

    const live = job.status === "running" && p.epoch && p.fraction > 0 ? { x: p.fraction * epochs, p } : null;
    // The epoch axis runs a little past the latest point (capped at the epochs asked for), so a long job's first
    // epochs are not squeezed into a corner; a finished job's axis ends at its last epoch.
    const reached = Math.max(history.length, live ? live.x : 0);
    const xMax = finished(job) ? Math.max(1, history.length) : Math.min(epochs, Math.max(10, Math.ceil(reached * 1.25)));
    drawChart($("loss-chart"), {
      xMax,
      series: [{ name: "loss", points: history.map((h) => [h.epoch, h.loss]), live: live && [live.x, p.loss] }],
      format: (v) => v.toFixed(2),
      describe: "loss",
    });
    const withVal = history.some((h) => h.val_accuracy > 0);
    drawChart($("acc-chart"), {
      xMax,
      series: [
        { name: "train", points: history.map((h) => [h.epoch, h.train_accuracy]), live: live && [live.x, p.train_accuracy] },
        withVal ? { name: "val", points: history.map((h) => [h.epoch, h.val_accuracy]) } : null,
      ].filter(Boolean),
      accuracy: true,
      format: (v) => `${Math.round(v * 100)}%`,
      describe: "accuracy",
    });

    const rows = history.map((h) => el("tr", {},
      el("td", {}, String(h.epoch)), el("td", {}, fixed(h.loss, 4)), el("td", {}, pct(h.train_accuracy)),
      el("td", {}, h.val_accuracy ? pct(h.val_accuracy) : "–"), el("td", {}, fixed(h.seconds, 2))));
    $("history").tBodies[0].replaceChildren(...rows);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Charts: an SVG per figure, drawn from the job's history. Epochs run along x (0 to the epochs asked for, so the
  // curve grows across the chart); a hollow dot marks the epoch in progress.

  function niceStep(range, ticks) {
    const raw = range / ticks;
    const mag = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }

  function drawChart(svg, opts) {
    const W = 320, H = 180, L = 42, R = 10, T = 10, B = 28;
    const pts = opts.series.flatMap((s) => s.points.concat(s.live ? [s.live] : []));
    svg.replaceChildren();
    const xMax = Math.max(1, opts.xMax || 1, ...pts.map((q) => q[0]));
    // Accuracy runs up to 100% from a round tenth below the lowest point; loss from 0 to a bit over the highest.
    let yMin = 0, yMax = 1;
    if (opts.accuracy && pts.length > 0) {
      yMin = Math.max(0, Math.floor(Math.min(...pts.map((q) => q[1])) * 10 - 0.2) / 10);
    } else if (pts.length > 0) {
      yMax = Math.max(...pts.map((q) => q[1])) * 1.1 || 1;
    }
    const x = (v) => L + ((W - L - R) * v) / xMax;
    const y = (v) => T + (H - T - B) * (1 - (v - yMin) / (yMax - yMin));

    const yStep = niceStep(yMax - yMin, 4);
    // Tick labels carry as many decimals as the step needs (percentages for accuracy).
    const digits = Math.max(0, -Math.floor(Math.log10(opts.accuracy ? yStep * 100 : yStep) + 1e-9));
    const tick = (v) => (opts.accuracy ? `${(v * 100).toFixed(digits)}%` : v.toFixed(digits));
    for (let i = Math.ceil(yMin / yStep - 1e-9); i * yStep <= yMax + 1e-9; i++) {
      const v = i * yStep;
      svg.append(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.append(svgEl("text", { class: "axis-label", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, tick(v)));
    }
    const xStep = Math.max(1, niceStep(xMax, 6));
    for (let v = 0; v <= xMax; v += xStep) {
      svg.append(svgEl("text", { class: "axis-label", x: x(v), y: H - B + 15, "text-anchor": "middle" }, String(v)));
    }
    svg.append(svgEl("text", { class: "axis-label", x: W - R, y: H - 2, "text-anchor": "end" }, "epoch"));
    svg.append(svgEl("line", { class: "grid", x1: L, x2: L, y1: T, y2: H - B }));

    if (pts.length === 0) {
      svg.append(svgEl("text", { class: "empty", x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle" },
        "Waiting for the first epoch…"));
      return;
    }
    for (const s of opts.series) {
      const line = s.points.map((q) => `${x(q[0]).toFixed(1)},${y(q[1]).toFixed(1)}`);
      if (line.length > 1) svg.append(svgEl("polyline", { class: `series-${s.name}`, points: line.join(" ") }));
      for (const [ex, v] of s.points) {
        const c = svgEl("circle", { class: `dot dot-${s.name}`, cx: x(ex).toFixed(1), cy: y(v).toFixed(1), r: 3.5 });
        c.append(svgEl("title", {}, `epoch ${ex}: ${s.name === "loss" ? v.toFixed(4) : pct(v)}`));
        svg.append(c);
      }
      if (s.live) {
        svg.append(svgEl("circle", { class: `live series-${s.name}`, cx: x(s.live[0]).toFixed(1),
          cy: y(s.live[1]).toFixed(1), r: 4 }));
      }
    }
    const n = opts.series[0].points.length;
    svg.setAttribute("aria-description", n === 0 ? "No epoch finished yet." :
      `${n} epoch${n === 1 ? "" : "s"}; latest ${opts.describe} ${opts.format(opts.series[0].points[n - 1][1])}.`);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Model versions: metrics, and a button to serve any version (activate a new one, or roll back to an old one).

  // loadModels lists the chosen model's versions; the one marked active is the one its name serves.
  async function loadModels() {
    if (!current) return;
    const name = current.name;
    const r = await api("GET", `/models/${encodeURIComponent(name)}/versions`, { admin: true });
    if (!current || current.name !== name) return; // another model was chosen meanwhile
    const versions = (r.versions || []).slice().sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
    const serving = versions.find((m) => m.active);
    const rows = versions.map((m) => {
      const isServing = m.active;
      const older = serving && Date.parse(m.created) < Date.parse(serving.created);
      let action;
      if (isServing) {
        action = el("span", { class: "badge" }, "Serving");
      } else {
        action = el("button", { type: "button", class: "secondary", "data-version": m.version,
          "aria-label": `${older ? "Roll back to" : "Activate"} version ${m.version}` }, older ? "Roll back" : "Activate");
        action.addEventListener("click", () => activate(name, m.version, action));
      }
      const metrics = m.metrics || {};
      return el("tr", { class: isServing ? "active" : null, "data-version": m.version },
        el("td", { class: "mono" }, m.version),
        el("td", {}, m.created ? new Date(m.created).toLocaleString() : "–"),
        el("td", {}, (m.layers || []).join(" → ")),
        el("td", {}, m.activation || "–"),
        el("td", {}, metrics.test_accuracy ? pct(metrics.test_accuracy) : "–"),
        el("td", {}, metrics.validation_accuracy ? pct(metrics.validation_accuracy) : "–"),
        el("td", { class: "origin" }, origin(m)),
        el("td", {}, action));
    });
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No model versions.")));
    $("models").tBodies[0].replaceChildren(...rows);
  }

  // origin says where a version came from: built into the binary, trained here, or imported with its producer.
  function origin(m) {
    if (m.origin) {
      const producer = [m.origin.producer, m.origin.producer_version].filter(Boolean).join(" ") || "an unnamed tool";
      return `imported from ${String(m.origin.format).toUpperCase()} (${producer}${m.origin.opset ? `, opset ${m.origin.opset}` : ""})`;
    }
    return m.source === "embedded" ? "built in" : "trained here";
  }

  async function activate(name, version, button) {
    button.disabled = true;
    try {
      await api("POST", `/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/activate`, { admin: true });
      showError("admin-error", "");
      $("token-state").textContent = `Model ${name} now serves ${version}.`;
      await loadModels();
      await loadIndex(); // asks again for what is on screen when the chosen model's version changed
    } catch (err) {
      button.disabled = false;
      showError("admin-error", `Version ${version} was not activated. ${err.message}`);
    }
  }

  $("refresh-models").addEventListener("click", () => {
    loadModels().then(() => showError("admin-error", ""), (err) => showError("admin-error", err.message));
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Start.

  loadIndex();
  drawChart($("loss-chart"), { xMax: 10, series: [{ name: "loss", points: [] }], format: (v) => v.toFixed(2) });
  drawChart($("acc-chart"), { xMax: 10, series: [{ name: "train", points: [] }], accuracy: true,
    format: (v) => `${Math.round(v * 100)}%` });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    $("token").value = saved;
    useToken(saved);
  }
})();
