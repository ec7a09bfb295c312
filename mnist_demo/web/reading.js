// The reading panel: the verdict, the ten probabilities (or a number's likeliest readings), and the 28 x 28
// input(s) the network saw, filled by the server after each stroke and by the page's own reader.
//
// This file is the body of a gr.HTML `js_on_load` (ui/reading.py builds the component, elem_id "pred"):
// Gradio runs it once with `element`, `props` (the value, and `constants`: image_size, num_classes) and
// `watch`. Everything is built once; an update only changes text, a transform and canvas pixels, so the
// page can call it many times a second.
//
// A reading value, as the server sends it (a JSON string) or as an object:
//   {"source": "server" | "page",
//    "verdict": "It's a 7 (98% sure).",                    the sentence, shown as the heading #verdict
//    "digits": [{"probabilities": [p0, ..., p9],          per digit, left to right: softmax, 0-9 order
//                "input": [784 integers 0-255]}, ...],     the 28 x 28 input, row-major, white ink on black
//    "numbers": [["42", 0.91], ["47", 0.05], ...],          several digits: the likeliest readings, best first
//    "error": true,                                        optional: the verdict is a message, not a reading
//    "drawn": "3:41:1234567",                              optional: the strokes read (their `signature`)
//    "model": "9f0c..."}                                   optional: the page-model hash of the model that read
// null, "" or a value without a verdict shows the empty state, "Draw a digit". One digit shows ten bars in
// fixed 0-9 order; a number shows its likeliest readings as bars instead. Malformed parts are left out.
//
// The page's reader renders its own readings with window.mnistDemo.showReading(value) (same format,
// "source": "page"); the last value shown wins, whether it came from the server or the page, with one
// exception: while the page reads (window.mnistDemo.pageReads(), mnist_demo/web/live.js), a server value
// whose `drawn` is not the strokes on the pad now (the pen moved on since) or whose `model` is not the
// page's model is not shown, so the server's answer never takes the panel back to an older state; it is
// counted in window.mnistDemo.panel.stale, and shown after all by panel.restore() (live.js calls it when
// the page stops reading: a model that could not be fetched). `drawn` is `signature(strokes)` below, which ui/reading.py's
// `drawn_signature` computes alike. After each render the panel dispatches a 'reading' CustomEvent on
// `element` (it bubbles: listen on #pred), detail {source, verdict}, with source null for the empty state.

const C = props.constants;
const SIZE = C.image_size; // 28
const PIXELS = SIZE * SIZE;
const MAX_BARS = C.num_classes; // ten digits, or at most this many readings of a number
const MAX_VIEWS = C.max_digits; // the server reads at most this many digits in one drawing
const EMPTY = "Draw a digit";

const root = element.querySelector(".reading");
const verdict = element.querySelector("#verdict");
const bars = element.querySelector(".reading-bars");
const views = element.querySelector(".reading-views");
root.style.setProperty("--pixels", String(SIZE)); // the pixel grid drawn over each view (reading.css)

// One row per bar, made once: [label][track with its fill][percent].
const rows = [];
for (let i = 0; i < MAX_BARS; i++) {
  const li = document.createElement("li");
  li.hidden = true;
  const label = document.createElement("span");
  label.className = "bar-label";
  const track = document.createElement("span");
  track.className = "bar-track";
  const fill = document.createElement("span");
  fill.className = "bar-fill";
  track.appendChild(fill);
  const percent = document.createElement("span");
  percent.className = "bar-value";
  li.append(label, track, percent);
  bars.appendChild(li);
  rows.push({ li, label, fill, percent, text: null, share: null, top: null });
}

// 28 x 28 canvases, made when first needed and reused; each keeps its ImageData.
const canvases = [];
function view(i) {
  if (!canvases[i]) {
    const frame = document.createElement("span");
    frame.className = "reading-view";
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = SIZE;
    frame.appendChild(canvas);
    views.appendChild(frame);
    const ctx = canvas.getContext("2d");
    canvases[i] = { frame, ctx, image: ctx.createImageData(SIZE, SIZE) };
  }
  return canvases[i];
}

// Text changes in place: the element's one text node keeps its identity (no node made per update).
function setText(node, text) {
  const child = node.firstChild;
  if (child && child.nodeType === Node.TEXT_NODE && !child.nextSibling) {
    if (child.data !== text) child.data = text;
  } else {
    node.textContent = text;
  }
}

function isProbabilities(p) {
  return Array.isArray(p) && p.length === MAX_BARS && p.every(Number.isFinite);
}

// A reading value as an object (a JSON string parsed), or null.
function decode(value) {
  if (typeof value !== "string") return value && typeof value === "object" ? value : null;
  try {
    return value.trim() ? JSON.parse(value) : null;
  } catch (error) {
    return null;
  }
}

// The strokes on the pad, in a few numbers: how many strokes and points, and a weighted sum of the
// coordinates in drawing order (the same double additions as ui/reading.py's drawn_signature).
function signature(strokes) {
  let points = 0;
  let total = 0;
  for (const stroke of strokes) {
    for (const point of stroke) {
      total += (point[0] + 3 * point[1]) * ((points % 7) + 1);
      points += 1;
    }
  }
  return `${strokes.length}:${points}:${Math.floor(total * 100)}`;
}

// A decoded reading value -> {source, verdict, error, entries: [[label, share]], top, inputs: [[784]]}, or null.
function parse(reading) {
  if (!reading || typeof reading !== "object" || typeof reading.verdict !== "string") return null;
  const digits = (Array.isArray(reading.digits) ? reading.digits : []).slice(0, MAX_VIEWS);
  let entries = [];
  if (digits.length === 1 && isProbabilities(digits[0].probabilities)) {
    entries = digits[0].probabilities.map((p, d) => [String(d), p]);
  } else if (Array.isArray(reading.numbers)) {
    entries = reading.numbers
      .filter((n) => Array.isArray(n) && typeof n[0] === "string" && Number.isFinite(n[1]))
      .slice(0, MAX_BARS);
  }
  let top = -1;
  entries.forEach(([, p], i) => {
    if (top < 0 || p > entries[top][1]) top = i;
  });
  const inputs = digits.map((d) => d.input).filter((x) => Array.isArray(x) && x.length === PIXELS);
  return {
    source: reading.source === "page" ? "page" : "server",
    verdict: reading.verdict,
    error: reading.error === true,
    entries,
    top,
    inputs,
  };
}

function showBars(entries, top) {
  rows.forEach((row, i) => {
    const entry = entries[i];
    row.li.hidden = !entry;
    if (!entry) return;
    const share = Math.min(1, Math.max(0, entry[1]));
    setText(row.label, entry[0]);
    if (row.share !== share) {
      row.share = share;
      row.fill.style.transform = `scaleX(${share})`;
      setText(row.percent, `${Math.round(share * 100)}%`);
    }
    if (row.top !== (i === top)) {
      row.top = i === top;
      row.li.classList.toggle("top", row.top);
    }
  });
}

function showInputs(inputs) {
  views.classList.toggle("many", inputs.length > 1);
  inputs.forEach((pixels, i) => {
    const { frame, ctx, image } = view(i);
    frame.hidden = false;
    const data = image.data; // RGBA
    for (let k = 0; k < PIXELS; k++) {
      const v = pixels[k];
      data[4 * k] = data[4 * k + 1] = data[4 * k + 2] = v;
      data[4 * k + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
  });
  for (let i = inputs.length; i < canvases.length; i++) canvases[i].frame.hidden = true;
}

function render(value) {
  const reading = parse(decode(value));
  root.classList.toggle("is-empty", !reading);
  root.classList.toggle("is-error", !!reading && reading.error);
  root.dataset.source = reading ? reading.source : "";
  setText(verdict, reading ? reading.verdict : EMPTY);
  showBars(reading && !reading.error ? reading.entries : [], reading ? reading.top : -1);
  showInputs(reading && !reading.error ? reading.inputs : []);
  const detail = { source: reading ? reading.source : null, verdict: verdict.textContent };
  element.dispatchEvent(new CustomEvent("reading", { bubbles: true, detail }));
}

const demo = (window.mnistDemo = window.mnistDemo || {});
const panel = (demo.panel = { stale: 0, signature });
let strokes = []; // the pad's strokes as it last announced them (mnist_demo/web/pad.js)
document.addEventListener("strokes", (event) => {
  strokes = event.detail.strokes;
});

// Is this server value of other strokes, or another model, than the page reads now? (See the top.)
function stale(value) {
  if (!value || typeof value.drawn !== "string" || typeof demo.pageReads !== "function" || !demo.pageReads()) {
    return false;
  }
  const model = demo.models ? demo.models.currentHash : null;
  return value.drawn !== signature(strokes) || (typeof value.model === "string" && value.model !== model);
}

// The last server value kept off screen, shown after all if the page stops reading (its new model failed).
let held = null;
panel.restore = () => {
  if (held !== null && !(typeof demo.pageReads === "function" && demo.pageReads())) render(held);
  held = null;
};

demo.showReading = render;
watch("value", () => {
  // the server's reading, after each stroke
  const value = decode(props.value);
  if (stale(value)) {
    panel.stale += 1;
    held = value;
  } else {
    held = null;
    render(value);
  }
});
render(props.value);
