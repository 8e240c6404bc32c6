/* trendcast dashboard: one plain script, no build step. Every number on the page comes from the /api/v1 JSON API.

   Panels load independently (one failing request never blanks another panel); each panel's element carries
   data-state = loading | ready | error, and the chart containers carry data-points (and data-markers) counted from
   the data actually handed to the chart, so the browser test can compare them with the API's counts. The number
   formats below (pct, num) are mirrored by tests/integration/test_dashboard_browser.py. */
(() => {
  "use strict";

  const API = "/api/v1";
  const KEY_STORE = "trendcast.apiKey";
  const CLASSES = ["Down", "Neutral", "Up"];
  const COLOR = {
    Up: "#0072b2",
    Down: "#d55e00",
    Neutral: "#8a8f98",
    candle: "#3d434b",
    muted: "#59616c",
    grid: "#eef0f3",
    border: "#d9dde3",
  };
  const FADED = { Up: "rgba(0, 114, 178, 0.32)", Down: "rgba(213, 94, 0, 0.32)", Neutral: "rgba(138, 143, 152, 0.32)" };
  const NA = "n/a";
  const LWC = window.LightweightCharts;
  const $ = (id) => document.getElementById(id);

  // -- formatting ------------------------------------------------------------------------------------------------
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const pct = (v, digits = 1) => (finite(v) ? `${(v * 100).toFixed(digits)}%` : NA);
  const num = (v, digits = 2) => (finite(v) ? v.toFixed(digits) : NA);
  const signed = (v, digits = 3) => (finite(v) ? `${v > 0 ? "+" : v < 0 ? "−" : ""}${Math.abs(v).toFixed(digits)}` : NA);
  const sci = (v) => (finite(v) ? v.toExponential(1) : NA);
  const str = (v) => (v === null || v === undefined || v === "" ? NA : String(v));
  const count = (v) => (finite(v) ? String(Math.round(v)) : NA);

  function dayKey(time) {
    if (typeof time === "string") return time;
    if (typeof time === "number") return new Date(time * 1000).toISOString().slice(0, 10);
    if (time && typeof time === "object") {
      return `${time.year}-${String(time.month).padStart(2, "0")}-${String(time.day).padStart(2, "0")}`;
    }
    return null;
  }

  function yearBefore(day, first) {
    const d = new Date(`${day}T00:00:00Z`);
    d.setUTCFullYear(d.getUTCFullYear() - 1);
    const start = d.toISOString().slice(0, 10);
    return first && start < first ? first : start;
  }

  // -- DOM helpers -----------------------------------------------------------------------------------------------
  function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined) el.append(child);
    return el;
  }

  function svg(tag, attrs = {}, ...children) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
    for (const child of children) el.append(child);
    return el;
  }

  function setText(id, text, value) {
    const el = $(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = value === null ? "" : String(value);
    return el;
  }

  // -- API client ------------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(kind, message, detail = "", status = 0, wait = null) {
      super(message);
      this.kind = kind;
      this.detail = detail;
      this.status = status;
      this.wait = wait;
    }
  }

  async function api(path, body) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["X-API-Key"] = key;
    const init = { headers, cache: "no-store" };
    if (body !== undefined) {
      init.method = "POST";
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (exc) {
      throw new ApiError("down", "The service is not answering: is `trendcast serve` running? Retry once it is.",
        String(exc && exc.message ? exc.message : exc));
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) throw failure(response, data);
    if (data === null || typeof data !== "object") {
      throw new ApiError("bad", "The service sent an answer this page cannot read.", "", response.status);
    }
    return data;
  }

  function retryAfter(response, details) {
    const header = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    if (Number.isFinite(header)) return header;
    return finite(details.retry_after_s) ? details.retry_after_s : null;
  }

  function failure(response, data) {
    const error = (data && data.error) || {};
    const code = error.code || "";
    const details = error.details && typeof error.details === "object" ? error.details : {};
    const said = error.message || response.statusText || "";
    const quoted = error.request_id ? `${said} (request id ${error.request_id})` : said;
    const status = response.status;
    if (status === 401) {
      openKeyBox();
      return new ApiError("auth", "This server needs an API key: enter it under “API key” at the top.", said, status);
    }
    if (status === 403) return new ApiError("forbidden", "This API key may not read this.", said, status);
    if (status === 404 && code === "unknown_ticker") {
      const ticker = details.ticker ? ` ${details.ticker}` : "";
      return new ApiError("unknown", `Unknown ticker${ticker}: the server holds no prices for it. Pick one from the list.`,
        said, status);
    }
    if (status === 404) return new ApiError("missing", "Nothing here for this request.", said, status);
    if (status === 409 && code === "no_evaluation") {
      return new ApiError("no_evaluation",
        "The served model was saved without its out-of-sample predictions: retrain it to see its track record.",
        said, status);
    }
    if (status === 422 && code === "insufficient_history") {
      return new ApiError("history",
        `Not enough history: ${str(details.available)} usable days up to this date, ${str(details.needed)} needed ` +
        `(${str(details.missing)} missing). Pick a later date.`, said, status);
    }
    if (status === 422) return new ApiError("invalid", "The server refused this request.", said, status);
    if (status === 429) {
      const wait = retryAfter(response, details);
      const when = wait === null ? "in a moment" : `in ${wait} s`;
      return new ApiError("limited", `Rate-limited: too many requests. Retry ${when}.`, said, status, wait);
    }
    if (status === 503 && code === "model_not_ready") {
      return new ApiError("not_ready",
        "The model is not ready: the server has no champion loaded yet (train one, or wait for it to load).",
        said, status);
    }
    if (status === 503) return new ApiError("unavailable", "The service is busy or a dependency is down; retry shortly.",
      quoted, status);
    return new ApiError("server", `The server failed (HTTP ${status}).`, quoted, status);
  }

  function asApiError(exc) {
    if (exc instanceof ApiError) return exc;
    console.warn("dashboard:", exc);
    return new ApiError("page", "This panel could not show the answer.", String(exc && exc.message ? exc.message : exc));
  }

  // -- panel states ----------------------------------------------------------------------------------------------
  function loading(id) {
    const el = $(id);
    el.dataset.state = "loading";
    el.setAttribute("aria-busy", "true");
  }

  function ready(id, note) {
    const el = $(id);
    el.dataset.state = "ready";
    el.removeAttribute("aria-busy");
    delete el.dataset.error;
    const msg = el.querySelector(".msg");
    msg.replaceChildren();
    msg.className = "msg";
    msg.hidden = !note;
    if (note) msg.append(h("span", { class: "text", text: note }));
  }

  function failed(id, exc, retry, partial = false) {
    const err = asApiError(exc);
    const el = $(id);
    el.removeAttribute("aria-busy");
    if (!partial) el.dataset.state = "error";
    el.dataset.error = err.kind;
    const msg = el.querySelector(".msg");
    msg.className = "msg error";
    msg.replaceChildren(h("span", { class: "text", text: err.message }));
    if (err.detail && err.detail !== err.message) msg.append(h("span", { class: "detail", text: err.detail }));
    if (retry) {
      const button = h("button", { type: "button", class: "quiet", text: "Try again" });
      button.addEventListener("click", retry);
      msg.append(button);
    }
    msg.hidden = false;
    return err;
  }

  function status(text, isError = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  function openKeyBox() {
    const box = $("key-box");
    if (!box.open) {
      box.open = true;
      $("api-key").focus();
    }
  }

  // -- charts ----------------------------------------------------------------------------------------------------
  function chartOptions() {
    return {
      autoSize: true,
      layout: {
        attributionLogo: false, // the logo injects an inline <style> the CSP forbids; the footer credits TradingView
        background: { type: "solid", color: "#ffffff" },
        textColor: COLOR.muted,
        fontSize: 11,
        fontFamily: getComputedStyle(document.body).fontFamily,
        panes: { separatorColor: COLOR.border, enableResize: false },
      },
      grid: { vertLines: { color: COLOR.grid }, horzLines: { color: COLOR.grid } },
      rightPriceScale: { borderColor: COLOR.border },
      timeScale: { borderColor: COLOR.border },
      localization: { locale: "en-US" },
    };
  }

  const percentFormat = { type: "custom", minMove: 0.001, formatter: (v) => pct(v, 0) };

  function requireCharts() {
    if (!LWC) throw new ApiError("page", "The chart library did not load; reload the page.");
  }

  /** A chart that fills its container (autoSize) and shows the whole range again whenever its width changes. */
  function newChart(el) {
    const chart = LWC.createChart(el, chartOptions());
    let width = el.clientWidth;
    new ResizeObserver(() => {
      if (el.clientWidth === width) return;
      width = el.clientWidth;
      chart.timeScale().fitContent();
    }).observe(el);
    return chart;
  }

  /** Sorted, one point per date (the chart library refuses anything else); `make` returns null to skip a row. */
  function byDate(rows, make) {
    const out = new Map();
    for (const row of rows || []) {
      if (!row || typeof row.date !== "string") continue;
      const point = make(row);
      if (point) out.set(row.date, point);
    }
    return [...out.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  }

  const valueOrGap = (time, value) => (finite(value) ? { time, value } : { time });

  // price chart: candles, predicted-class markers, and a confidence strip in a second pane
  let price = null;
  let firstChartMarked = false;

  function priceChart() {
    if (price) return price;
    requireCharts();
    const chart = newChart($("price-chart"));
    const candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: "#ffffff",
      downColor: COLOR.candle,
      borderUpColor: COLOR.candle,
      borderDownColor: COLOR.candle,
      wickUpColor: COLOR.candle,
      wickDownColor: COLOR.candle,
      priceLineVisible: false,
    });
    const markers = LWC.createSeriesMarkers(candles, []);
    const confidence = chart.addSeries(LWC.HistogramSeries, {
      priceFormat: percentFormat,
      priceLineVisible: false,
      lastValueVisible: false,
      autoscaleInfoProvider: () => ({ priceRange: { minValue: 0, maxValue: 1 } }),
    }, 1);
    chart.panes()[1].setStretchFactor(0.3);
    chart.subscribeCrosshairMove((param) => priceLegend(param.time ? dayKey(param.time) : null));
    price = { chart, candles, markers, confidence, bars: new Map(), calls: new Map() };
    return price;
  }

  function drawCandles(bars) {
    const p = priceChart();
    const data = byDate(bars, (b) => (
      [b.open, b.high, b.low, b.close].every(finite)
        ? { time: b.date, open: b.open, high: b.high, low: b.low, close: b.close }
        : { time: b.date }
    ));
    p.bars = new Map((bars || []).map((b) => [b.date, b]));
    p.calls = new Map();
    p.candles.setData(data);
    p.markers.setMarkers([]);
    p.confidence.setData([]);
    p.chart.timeScale().fitContent();
    const el = $("price-chart");
    el.dataset.points = String(data.length);
    el.dataset.markers = "0";
    el.dataset.confidencePoints = "0";
    el.setAttribute("aria-label", `Candlestick chart of ${data.length} daily prices`);
    if (!firstChartMarked) {
      firstChartMarked = true;
      requestAnimationFrame(() => performance.mark("first-chart"));
    }
    priceLegend(null);
  }

  function drawCalls(points) {
    const p = priceChart();
    const calls = byDate(points, (pt) => (p.bars.has(pt.date) ? { time: pt.date, point: pt } : null));
    p.calls = new Map(calls.map((c) => [c.time, c.point]));
    const markers = [];
    for (const { time, point } of calls) {
      if (point.predicted !== "Up" && point.predicted !== "Down") continue; // Neutral: the strip shows it, no arrow
      const up = point.predicted === "Up";
      markers.push({
        time,
        position: up ? "belowBar" : "aboveBar",
        shape: up ? "arrowUp" : "arrowDown",
        color: point.correct === false ? FADED[point.predicted] : COLOR[point.predicted],
        size: 0.7,
      });
    }
    p.markers.setMarkers(markers);
    const strip = calls.map(({ time, point }) => {
      const cls = CLASSES.includes(point.predicted) ? point.predicted : "Neutral";
      const bar = valueOrGap(time, point.confidence);
      if (bar.value !== undefined) bar.color = point.correct === false ? FADED[cls] : COLOR[cls];
      return bar;
    });
    p.confidence.setData(strip);
    const el = $("price-chart");
    el.dataset.markers = String(markers.length);
    el.dataset.confidencePoints = String(strip.length);
    el.setAttribute("aria-label",
      `Candlestick chart of ${p.bars.size} daily prices with ${markers.length} Up or Down calls marked`);
    priceLegend(null);
  }

  function priceLegend(day) {
    const legend = $("price-legend");
    if (!price || price.bars.size === 0) {
      legend.textContent = "Point at a day for its prices and call.";
      return;
    }
    const key = day && price.bars.has(day) ? day : [...price.bars.keys()].sort().pop();
    const bar = price.bars.get(key);
    const call = price.calls.get(key);
    const parts = [
      h("strong", { text: key }),
      ` open ${num(bar.open)} high ${num(bar.high)} low ${num(bar.low)} close ${num(bar.close)}`,
    ];
    if (call) {
      const cls = CLASSES.includes(call.predicted) ? call.predicted : "Neutral";
      const verdict = call.correct === true ? "✓ right" : call.correct === false ? `✗ wrong, it went ${str(call.actual)}`
        : "outcome not known yet";
      parts.push(" · called ", h("span", { class: `key ${cls.toLowerCase()}`, text: str(call.predicted) }),
        ` (confidence ${pct(call.confidence)}) · ${verdict}`);
    } else {
      parts.push(" · no out-of-sample call");
    }
    legend.replaceChildren(...parts);
  }

  // backtest chart: strategy vs buy and hold; drawdowns in a second pane
  let equity = null;

  function equityChart() {
    if (equity) return equity;
    requireCharts();
    const chart = newChart($("backtest-chart"));
    const common = { priceLineVisible: false, lastValueVisible: false };
    const strategy = chart.addSeries(LWC.LineSeries, { ...common, color: COLOR.Up, lineWidth: 2, title: "strategy" });
    const hold = chart.addSeries(LWC.LineSeries, {
      ...common, color: COLOR.muted, lineWidth: 2, lineStyle: LWC.LineStyle.Dashed, title: "buy & hold",
    });
    const ddCommon = { ...common, priceFormat: percentFormat };
    const strategyDd = chart.addSeries(LWC.AreaSeries, {
      ...ddCommon, lineColor: COLOR.Up, topColor: "rgba(0, 114, 178, 0.05)", bottomColor: "rgba(0, 114, 178, 0.3)",
      lineWidth: 1, invertFilledArea: false,
    }, 1);
    const holdDd = chart.addSeries(LWC.LineSeries, {
      ...ddCommon, color: COLOR.muted, lineWidth: 1, lineStyle: LWC.LineStyle.Dashed,
    }, 1);
    chart.panes()[1].setStretchFactor(0.5);
    chart.subscribeCrosshairMove((param) => equityLegend(param.time ? dayKey(param.time) : null));
    equity = { chart, strategy, hold, strategyDd, holdDd, rows: new Map() };
    return equity;
  }

  function drawEquity(rows) {
    const e = equityChart();
    const pick = (field) => byDate(rows, (r) => valueOrGap(r.date, r[field]));
    const strategy = pick("strategy");
    e.strategy.setData(strategy);
    e.hold.setData(pick("buy_and_hold"));
    e.strategyDd.setData(pick("strategy_drawdown"));
    e.holdDd.setData(pick("buy_and_hold_drawdown"));
    e.rows = new Map((rows || []).map((r) => [r.date, r]));
    e.chart.timeScale().fitContent();
    const el = $("backtest-chart");
    el.dataset.points = String(strategy.length);
    el.setAttribute("aria-label",
      `Equity curve of the strategy against buy and hold over ${strategy.length} days, with drawdowns`);
    equityLegend(null);
  }

  function equityLegend(day) {
    const legend = $("backtest-legend");
    if (!equity || equity.rows.size === 0) {
      legend.textContent = "Point at a day for its values.";
      return;
    }
    const key = day && equity.rows.has(day) ? day : [...equity.rows.keys()].sort().pop();
    const r = equity.rows.get(key);
    legend.replaceChildren(
      h("strong", { text: key }),
      ` strategy ${num(r.strategy, 3)} (drawdown ${pct(r.strategy_drawdown)})`,
      ` · buy & hold ${num(r.buy_and_hold, 3)} (drawdown ${pct(r.buy_and_hold_drawdown)})`,
    );
  }

  // -- panels ----------------------------------------------------------------------------------------------------
  const state = { tickers: new Map(), current: null, generation: 0, method: "auto", datesEdited: false };

  function current(request) {
    return request.generation === state.generation;
  }

  function rangeQuery(request) {
    const params = new URLSearchParams();
    if (request.start) params.set("start", request.start);
    if (request.end) params.set("end", request.end);
    const q = params.toString();
    return `${encodeURIComponent(request.ticker)}${q ? `?${q}` : ""}`;
  }

  function tickerBody(request, extra = {}) {
    return { ticker: request.ticker, ...(request.end ? { as_of: request.end } : {}), ...extra };
  }

  /** Candles first (the first chart waits on nothing else), then `after()` starts the other panels' requests. */
  async function loadPrice(request, after = () => undefined) {
    loading("price-panel");
    let bars;
    try {
      bars = await api(`/prices/${rangeQuery(request)}`);
      if (current(request)) drawCandles(bars.bars);
    } catch (exc) {
      if (current(request)) {
        resetPrice();
        failed("price-panel", exc, () => loadPrice(request));
      }
      after();
      return;
    }
    after();
    if (!current(request)) return;
    try {
      const calls = await api(`/history/${rangeQuery(request)}`);
      if (!current(request)) return;
      drawCalls(calls.points);
      const el = setText("hit-rate-value", pct(calls.hit_rate), calls.hit_rate);
      el.classList.toggle("up-text", finite(calls.hit_rate));
      const model = calls.model || {};
      setText("hit-rate-detail",
        ` of ${count(calls.known)} calls with a known outcome (${count(calls.count)} out-of-sample days, ` +
        `${str(calls.model_type)} ${str(model.name)} v${str(model.version)}, ${str(calls.horizon)}-day horizon).`);
      ready("price-panel", (bars.bars || []).length === 0 ? "No prices in this date range." : null);
    } catch (exc) {
      if (!current(request)) return;
      setText("hit-rate-value", NA, null);
      setText("hit-rate-detail", "");
      ready("price-panel");
      failed("price-panel", exc, () => loadPrice(request), true);
      $("price-panel").querySelector(".msg .text").prepend("Predictions: ");
    }
  }

  function resetPrice() {
    if (price) {
      price.bars = new Map();
      price.calls = new Map();
      price.candles.setData([]);
      price.markers.setMarkers([]);
      price.confidence.setData([]);
    }
    const el = $("price-chart");
    el.dataset.points = "0";
    el.dataset.markers = "0";
    el.dataset.confidencePoints = "0";
    setText("hit-rate-value", NA, null);
    setText("hit-rate-detail", "");
    priceLegend(null);
  }

  async function loadForecast(request) {
    loading("forecast-panel");
    try {
      const p = await api("/predict", tickerBody(request));
      if (!current(request)) return;
      showForecast(p);
      ready("forecast-panel");
    } catch (exc) {
      if (!current(request)) return;
      showForecast({});
      failed("forecast-panel", exc, () => loadForecast(request));
    }
  }

  // cross_sectional labels are relative: Up = above the day's cross-sectional median, Down = at or below it
  const RELATIVE_NAMES = { Up: "above median", Down: "below median" };

  function className(cls, mode) {
    return mode === "cross_sectional" && RELATIVE_NAMES[cls] ? RELATIVE_NAMES[cls] : cls;
  }

  function showForecast(p) {
    const label = CLASSES.includes(p.predicted_label) ? p.predicted_label : null;
    const pill = setText("forecast-label", label ? className(label, p.label_mode) : NA, label);
    pill.className = `label-pill ${label || ""}`;
    setText("forecast-confidence", `confidence ${pct(p.confidence)}`, p.confidence);
    const model = p.model || {};
    setText("forecast-meta", p.predicted_label === undefined ? NA
      : `From the window ending ${str(p.window_end)} (asked as of ${str(p.as_of || "the latest bar")}); ` +
        `${str(model.name)} v${str(model.version)}.`);
    const probs = p.probabilities || {};
    const rows = [];
    for (const cls of ["Up", "Neutral", "Down"]) {
      if (p.label_mode === "cross_sectional" && cls === "Neutral") continue; // binary labels: never Neutral
      const value = probs[cls];
      const bar = h("div", { class: `prob-bar ${cls}` });
      bar.style.width = finite(value) ? `${Math.max(0, Math.min(1, value)) * 100}%` : "0";
      rows.push(
        h("dt", { class: `${cls.toLowerCase()}-text`, text: className(cls, p.label_mode) }),
        h("dd", { class: "prob-track", role: "presentation" }, bar),
        h("dd", { id: `prob-${cls}`, "data-value": finite(value) ? value : "", text: pct(value) }),
      );
    }
    $("forecast-probs").replaceChildren(...rows);
  }

  async function loadExplanation(request) {
    loading("explain-panel");
    loading("attention-panel");
    const method = state.method;
    try {
      // "auto" is the server's default: sent only when LIME is asked for
      const answer = await api("/explain", tickerBody(request, method === "auto" ? { top_k: 8 } : { top_k: 8, method }));
      if (!current(request) || method !== state.method) return;
      const x = answer.explanation || {};
      showAttributions(x);
      ready("explain-panel");
      showAttention(x);
    } catch (exc) {
      if (!current(request) || method !== state.method) return;
      showAttributions({});
      clearAttention();
      const err = failed("explain-panel", exc, () => loadExplanation(request));
      failed("attention-panel", err, () => loadExplanation(request));
    }
  }

  function showAttributions(x) {
    setText("explain-sentence", str(x.sentence));
    const features = Array.isArray(x.top_features) ? x.top_features.filter((f) => f && finite(f.contribution)) : [];
    const largest = Math.max(1e-12, ...features.map((f) => Math.abs(f.contribution)));
    const cells = [];
    for (const f of features) {
      const share = (Math.abs(f.contribution) / largest) * 50;
      const bar = h("div", { class: `bar ${f.contribution >= 0 ? "pos" : "neg"}` });
      bar.style.left = `${f.contribution >= 0 ? 50 : 50 - share}%`;
      bar.style.width = `${share}%`;
      const name = f.label || f.feature || NA;
      cells.push(
        h("div", { class: "bar-label" }, name, h("span", { class: "value", text: ` = ${str(f.value_text)}` })),
        h("div", { class: "bar-track", title: `${name}: ${signed(f.contribution, 4)}` }, h("div", { class: "axis" }), bar),
        h("div", { class: `bar-value ${f.contribution >= 0 ? "up-text" : "down-text"}`, text: signed(f.contribution) }),
      );
    }
    const bars = $("explain-bars");
    bars.replaceChildren(...cells);
    bars.dataset.points = String(features.length);
    bars.setAttribute("aria-label", features.length === 0 ? "No attributions"
      : `Signed attributions of the ${features.length} strongest features: positive pushes towards the predicted ` +
        `class (${str(x.predicted_label)}), negative against it`);
    const meta = $("explain-meta");
    meta.replaceChildren(
      "method ", h("strong", { id: "explain-method", "data-value": x.method || "", text: str(x.method) }),
      ` · output in ${str(x.output_space)} from base ${num(x.base_value, 3)} to ${num(x.output_value, 3)}`,
      " · additivity error ",
      h("span", { id: "explain-additivity", "data-value": finite(x.additivity_error) ? x.additivity_error : "",
        text: sci(x.additivity_error) }),
    );
  }

  function clearAttention() {
    const map = $("attention-map");
    map.replaceChildren();
    map.dataset.points = "0";
    setText("attention-summary", NA);
  }

  function showAttention(x) {
    const steps = Array.isArray(x.attention) ? x.attention.filter((a) => a && finite(a.weight)) : [];
    if (steps.length === 0) {
      clearAttention();
      setText("attention-summary", "");
      ready("attention-panel", `The served model (${str(x.model)}) has no attention weights; only the Bi-LSTM has them.`);
      return;
    }
    // shade from the window's lightest to its darkest day (attention is often nearly flat); the summary gives both
    const width = 400;
    const cell = width / steps.length;
    const weights = steps.map((a) => a.weight);
    const low = Math.min(...weights);
    const high = Math.max(...weights);
    const shade = (w) => 0.08 + 0.92 * (high > low ? (w - low) / (high - low) : 1);
    const rects = steps.map((a, i) => svg("rect", {
      x: (i * cell).toFixed(2), y: 0, width: Math.max(cell - 0.5, 0.5).toFixed(2), height: 40,
      fill: COLOR.Up, "fill-opacity": shade(a.weight).toFixed(3),
    }, svg("title", {}, document.createTextNode(`${str(a.date)}: ${pct(a.weight, 2)} of the attention`))));
    const ticks = [];
    const every = Math.max(1, Math.ceil(steps.length / 4));
    steps.forEach((a, i) => {
      const last = i === steps.length - 1;
      if ((i % every !== 0 && !last) || (!last && steps.length - 1 - i < every * 0.75)) return;
      const anchor = i === 0 ? "start" : last ? "end" : "middle";
      const x0 = i === 0 ? 0 : last ? width : i * cell + cell / 2;
      ticks.push(svg("text", { x: x0.toFixed(2), y: 58, class: "tick", "text-anchor": anchor },
        document.createTextNode(str(a.date))));
    });
    const map = $("attention-map");
    map.replaceChildren(svg("svg", { viewBox: `0 0 ${width} 64`, "aria-hidden": "true" }, ...rects, ...ticks));
    map.dataset.points = String(steps.length);
    const first = steps[0].date;
    const last = steps[steps.length - 1].date;
    map.setAttribute("aria-label", `Attention heatmap over ${steps.length} days from ${str(first)} to ${str(last)}`);
    const range = `one day got ${pct(low)} to ${pct(high)}`;
    setText("attention-summary", finite(x.attention_recent_share)
      ? `The last ${str(x.attention_recent_days)} days carried ${pct(x.attention_recent_share)} of the attention; ` +
        `${range} (window ${str(first)} to ${str(last)}).`
      : `Window ${str(first)} to ${str(last)}; ${range}.`);
    ready("attention-panel");
  }

  const BACKTEST_METRICS = [
    ["sharpe", "Sharpe ratio", (v) => num(v, 2)],
    ["sortino", "Sortino ratio", (v) => num(v, 2)],
    ["max_drawdown", "Max drawdown", (v) => pct(v, 1)],
    ["annual_return", "Annual return", (v) => pct(v, 1)],
    ["total_return", "Total return", (v) => pct(v, 1)],
    ["win_rate", "Win rate", (v) => pct(v, 1)],
    ["profit_factor", "Profit factor", (v) => num(v, 2)],
    ["exposure", "Exposure", (v) => pct(v, 0)],
    ["trades", "Trades", count],
  ];

  async function loadBacktest(request) {
    loading("backtest-panel");
    try {
      const b = await api(`/backtest/${rangeQuery(request)}`);
      if (!current(request)) return;
      showBacktestTable(b);
      drawEquity(b.equity);
      ready("backtest-panel", (b.equity || []).length === 0 ? "No out-of-sample days in this date range." : null);
    } catch (exc) {
      if (!current(request)) return;
      showBacktestTable({});
      if (equity) drawEquity([]);
      $("backtest-chart").dataset.points = "0";
      failed("backtest-panel", exc, () => loadBacktest(request));
    }
  }

  function showBacktestTable(b) {
    const metrics = b.metrics || {};
    const rows = BACKTEST_METRICS.map(([key, label, format]) => {
      const cells = ["strategy", "buy_and_hold"].map((side) => {
        const value = (metrics[side] || {})[key];
        return h("td", { id: `bt-${side}-${key}`, "data-value": finite(value) ? value : "", text: format(value) });
      });
      return h("tr", {}, h("th", { scope: "row", text: label }), ...cells);
    });
    $("backtest-metrics").tBodies[0].replaceChildren(...rows);
    setText("backtest-setup", b.metrics === undefined ? ""
      : `Costs ${str(b.costs_bps)} bps per trade, execution ${str(b.execution)}, model ${str(b.model_type)}.`
        + (b.entry_rule ? ` Entry: ${str(b.entry_rule)}.` : ""));
  }

  async function loadCard() {
    loading("card-panel");
    try {
      const card = await api("/model/card");
      showCard(card);
      ready("card-panel");
    } catch (exc) {
      showCard({});
      failed("card-panel", exc, loadCard);
    }
  }

  function interval(score, format) {
    if (!score || typeof score !== "object") return [h("span", { text: NA })];
    const value = h("span", { class: "value", "data-value": finite(score.value) ? score.value : "", text: format(score.value) });
    if (!finite(score.low) && !finite(score.high)) return [value];
    const low = finite(score.low) ? format(score.low) : NA;
    const high = finite(score.high) ? format(score.high) : NA;
    return [value, " ", h("span", { class: "ci", title: "95% confidence interval", text: `[${low}, ${high}]` })];
  }

  function showCard(card) {
    const statement = $("card-statement");
    statement.hidden = !card.statement;
    statement.textContent = str(card.statement);
    statement.className = `statement ${card.verdict === "not_better" ? "not-better" : "better"}`;
    statement.dataset.verdict = str(card.verdict);
    const facts = [
      ["Model", `${str(card.model_type)} (${str(card.name)} v${str(card.version)}, alias ${str(card.alias)})`],
      ["Trained through", str(card.trained_through)],
      ["Horizon", card.horizon === undefined ? NA : `${str(card.horizon)} trading day(s)`],
      ["Window", card.window === undefined ? NA : `${str(card.window)} days`],
      ["Labels", card.label_mode === "cross_sectional"
        ? "relative: above / at or below the day's cross-sectional median" : "absolute: Down / Neutral / Up"],
      ["Primary metric", str(card.primary_metric)],
      ["Run", str(card.run_id)],
    ];
    $("card-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
    const scores = Array.isArray(card.scores) ? card.scores : [];
    const slug = (name) => String(name).replace(/[^A-Za-z0-9_-]/g, "_");
    $("card-scores").tBodies[0].replaceChildren(...scores.map((s) => h("tr", { class: s.served ? "served" : null },
      h("th", { scope: "row", text: `${str(s.model)}${s.served ? " (served)" : ""}` }),
      h("td", { id: `card-accuracy-${slug(s.model)}` }, ...interval(s.accuracy, (v) => pct(v, 1))),
      h("td", { id: `card-auc-${slug(s.model)}` }, ...interval(s.auc, (v) => num(v, 3))),
      h("td", { id: `card-logloss-${slug(s.model)}` }, ...interval(s.log_loss, (v) => num(v, 3))),
      h("td", { text: count(s.n) }),
    )));
    const decision = card.decision;
    if (decision && typeof decision === "object") {
      setText("card-decision", `${decision.promoted ? "Promoted" : "Not promoted"}: ${str(decision.reason)}`);
      const gates = Array.isArray(decision.gates) ? decision.gates : [];
      $("card-gates").replaceChildren(...gates.map((g) => h("li", {},
        h("span", { class: g.passed ? "pass" : "fail", text: g.passed ? "✓ passed" : "✗ failed" }),
        ` ${str(g.name)}: ${str(g.detail)}`)));
    } else {
      setText("card-decision", card.name === undefined ? NA : "No gate decision is recorded for this version.");
      $("card-gates").replaceChildren();
    }
  }

  // -- controls --------------------------------------------------------------------------------------------------
  function formRequest() {
    const ticker = $("ticker").value.trim().toUpperCase();
    return { ticker, start: $("start").value, end: $("end").value };
  }

  function defaultRange(ticker) {
    const info = state.tickers.get(ticker);
    if (!info) return;
    $("end").value = info.last;
    $("start").value = yearBefore(info.last, info.first);
    $("start").min = $("end").min = info.first;
    $("start").max = $("end").max = info.last;
    state.datesEdited = false;
  }

  function show() {
    const request = formRequest();
    if (!request.ticker) {
      status("Pick a ticker first.", true);
      $("ticker").focus();
      return;
    }
    if (request.ticker !== (state.current && state.current.ticker) && !state.datesEdited) defaultRange(request.ticker);
    Object.assign(request, formRequest(), { generation: ++state.generation });
    if (request.start && request.end && request.start > request.end) {
      status("“From” must be on or before “To”.", true);
      return;
    }
    state.current = request;
    $("ticker").value = request.ticker;
    history.replaceState(null, "", `#${new URLSearchParams({ ticker: request.ticker, start: request.start,
      end: request.end })}`);
    status(`${request.ticker}: ${request.start || "first bar"} to ${request.end || "last bar"}.`);
    for (const id of ["forecast-panel", "explain-panel", "attention-panel", "backtest-panel"]) loading(id);
    const first = !state.cardAsked;
    state.cardAsked = true;
    if (first) loading("card-panel");
    // The prices travel alone, so the first chart never queues behind the slower calls (explain, backtest).
    loadPrice(request, () => {
      if (first) loadCard();
      if (!current(request)) return;
      loadForecast(request);
      loadExplanation(request);
      loadBacktest(request);
    });
    preparePriceChart(); // the first time: built while the prices are in flight
  }

  async function loadTickers() {
    try {
      const data = await api("/tickers");
      const list = Array.isArray(data.tickers) ? data.tickers : [];
      state.tickers = new Map(list.map((t) => [String(t.ticker).toUpperCase(), t]));
      $("ticker-list").replaceChildren(...list.map((t) => h("option", {
        value: t.ticker, label: `${str(t.first)} to ${str(t.last)}, ${count(t.rows)} days`,
      })));
      if (list.length === 0) status("The server holds no prices yet: run `trendcast data ingest`.", true);
      return list;
    } catch (exc) {
      const err = asApiError(exc);
      status(`Could not list the tickers: ${err.message}${err.detail ? ` ${err.detail}` : ""}`, true);
      return [];
    }
  }

  function wire() {
    $("controls").addEventListener("submit", (event) => {
      event.preventDefault();
      show();
    });
    $("ticker").addEventListener("input", (event) => {
      const value = event.target.value.trim().toUpperCase();
      // a pick from the list (not typing) shows the ticker at once
      if (event.inputType === "insertReplacementText" || (!event.inputType && state.tickers.has(value))) {
        if (state.tickers.has(value)) {
          state.datesEdited = false;
          show();
        }
      }
    });
    for (const id of ["start", "end"]) $(id).addEventListener("input", () => { state.datesEdited = true; });
    for (const radio of document.querySelectorAll("input[name=method]")) {
      radio.addEventListener("change", () => {
        state.method = radio.value;
        if (state.current) {
          state.current = { ...state.current, generation: state.generation };
          loadExplanation(state.current);
        }
      });
    }
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (key) sessionStorage.setItem(KEY_STORE, key);
      else sessionStorage.removeItem(KEY_STORE);
      boot();
    });
    $("key-clear").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      $("api-key").value = "";
    });
  }

  function preparePriceChart() {
    if (price) return;
    try {
      priceChart();
    } catch (exc) {
      failed("price-panel", exc);
    }
  }

  async function boot() {
    state.cardAsked = false;
    const list = await loadTickers();
    const wanted = new URLSearchParams(location.hash.slice(1));
    const ticker = (wanted.get("ticker") || (state.current && state.current.ticker) || (list[0] && list[0].ticker) || "")
      .toUpperCase();
    if (!ticker) {
      loadCard();
      return;
    }
    $("ticker").value = ticker;
    defaultRange(ticker);
    if (wanted.get("ticker") && wanted.get("ticker").toUpperCase() === ticker) {
      if (wanted.get("start")) $("start").value = wanted.get("start");
      if (wanted.get("end")) $("end").value = wanted.get("end");
      state.datesEdited = Boolean(wanted.get("start") || wanted.get("end"));
    }
    state.current = null;
    show();
  }

  wire();
  if (sessionStorage.getItem(KEY_STORE)) $("api-key").value = sessionStorage.getItem(KEY_STORE);
  boot();
})();
