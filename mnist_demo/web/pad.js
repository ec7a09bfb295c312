// The stroke pad: a canvas that records the strokes drawn on it, not their pixels.
//
// This file is the body of a gr.HTML `js_on_load` (ui/pad.py builds the component): Gradio runs it once
// with `element` (the component's root), `props` (its value and the `constants` prop, which is
// mnist_demo.strokes.PAGE_CONSTANTS), `trigger` and `watch`.
//
// The value, props.value: a JSON string of the strokes drawn, oldest first, "[]" when the pad is empty.
//   [[[x, y, t], [x, y, t], ...], ...]: x and y in canvas pixels, 0 .. constants.pad_side (280) whatever
//   size the pad has on screen, y down, to 0.01 px; t in ms since that stroke's pen-down (an integer).
//   The pen is round, constants.brush (20) canvas pixels wide. A tap is a stroke of one point: a dot.
//   It changes on pen-up, Undo and Clear, and each change fires the component's .change once (Gradio
//   fires it when a gr.HTML's value changes). Python can set it too (the pad as an event's output): the
//   pad then shows those strokes.
// While drawing: a 'strokes' CustomEvent on `element` (it bubbles: listen on #pad), at most once per
//   animation frame while the pen moves, and at once after pen-up, Undo, Clear or a value from Python.
//   detail = {strokes, drawing}: every stroke so far, the one being drawn last (same format as the value,
//   live arrays: copy, never modify), and whether the pen is down now. This is what an in-page reader
//   listens to (issue 14).
//
// Input: pointer events, so a mouse, a pen and a finger draw alike; one pointer at a time (a second finger
// is ignored); `touch-action: none` (pad.css) keeps a finger from scrolling the page. Undo: the button or
// Ctrl/Cmd+Z while the pad has focus (drawing gives it focus). Clear: the button.

const C = props.constants;
const SIDE = C.pad_side; // canvas pixels across, whatever the CSS size
const MIN_STEP = 1; // canvas px: a pointer sample nearer than this to the stroke's last point adds nothing
const INK = "#000000";

const root = element.querySelector(".stroke-pad");
const canvas = element.querySelector("canvas");
const undoButton = element.querySelector(".pad-undo");
const clearButton = element.querySelector(".pad-clear");
const ctx = canvas.getContext("2d");

let strokes = []; // finished strokes, then the one being drawn
let pen = null; // while a pointer is down: {id, start (its timeStamp)}
let points = 0; // points in all strokes, capped at C.max_points as the server caps them
let sent = props.value; // the last value this pad set, to tell Python's values from our own
let frame = 0; // the requestAnimationFrame of the next 'strokes' event, 0 when none is due

// Pixels: the canvas's bitmap matches its size on screen (times devicePixelRatio), and is drawn in canvas
// pixels through a scale, so strokes look sharp at any size and coordinates stay 0 .. SIDE.
function fitBitmap() {
  const box = canvas.getBoundingClientRect();
  const side = Math.max(1, Math.round(box.width * (window.devicePixelRatio || 1)));
  if (canvas.width !== side || canvas.height !== side) {
    canvas.width = canvas.height = side;
    redraw();
  }
}

function setPen() {
  const scale = canvas.width / SIDE;
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = C.brush;
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
}

// Ink from point `from` of a stroke to its end; a stroke of one point is a dot.
function drawStroke(stroke, from) {
  if (stroke.length === 1) {
    ctx.beginPath();
    ctx.arc(stroke[0][0], stroke[0][1], C.brush / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  const start = stroke[Math.max(0, from - 1)];
  ctx.moveTo(start[0], start[1]);
  for (let i = Math.max(1, from); i < stroke.length; i++) ctx.lineTo(stroke[i][0], stroke[i][1]);
  ctx.stroke();
}

function redraw() {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  setPen();
  for (const stroke of strokes) drawStroke(stroke, 0);
  showState();
}

function showState() {
  root.classList.toggle("has-ink", strokes.length > 0); // hides the "draw here" hint
  undoButton.disabled = clearButton.disabled = strokes.length === 0 || pen !== null;
}

// The 'strokes' event: at once, or at the next animation frame however often it is asked for.
function announce(now) {
  const send = () => {
    frame = 0;
    element.dispatchEvent(new CustomEvent("strokes", { bubbles: true, detail: { strokes, drawing: pen !== null } }));
  };
  if (now) {
    if (frame) cancelAnimationFrame(frame);
    send();
  } else if (!frame) {
    frame = requestAnimationFrame(send);
  }
}

// The value: set it, and Gradio fires .change when it differs from the last (see the top of this file).
function commit() {
  sent = JSON.stringify(strokes);
  props.value = sent;
  showState();
  announce(true);
}

// A pointer event -> [x, y, t] in canvas pixels, kept on the paper, t in ms since pen-down.
function pointOf(event) {
  const box = canvas.getBoundingClientRect();
  const clamp = (v) => Math.min(SIDE, Math.max(0, Math.round(v * 100) / 100));
  return [
    clamp(((event.clientX - box.left) * SIDE) / box.width),
    clamp(((event.clientY - box.top) * SIDE) / box.height),
    Math.max(0, Math.round(event.timeStamp - pen.start)),
  ];
}

canvas.addEventListener("pointerdown", (event) => {
  if (pen !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
  if (strokes.length >= C.max_strokes || points >= C.max_points) return;
  event.preventDefault(); // no text selection, no emulated mouse events after a touch
  canvas.focus({ preventScroll: true }); // so that Ctrl+Z reaches the pad
  canvas.setPointerCapture(event.pointerId); // the stroke goes on if the pen strays off the paper
  pen = { id: event.pointerId, start: event.timeStamp };
  strokes.push([pointOf(event)]);
  points += 1;
  fitBitmap();
  setPen();
  drawStroke(strokes[strokes.length - 1], 0);
  showState();
  announce(false);
});

canvas.addEventListener("pointermove", (event) => {
  if (pen === null || event.pointerId !== pen.id) return;
  event.preventDefault();
  const stroke = strokes[strokes.length - 1];
  const before = stroke.length;
  // Coalesced events: every sample the device sent since the last frame, not just the latest.
  const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const sample of samples.length ? samples : [event]) {
    if (points >= C.max_points) break;
    const point = pointOf(sample);
    const last = stroke[stroke.length - 1];
    if (Math.hypot(point[0] - last[0], point[1] - last[1]) >= MIN_STEP) {
      stroke.push(point);
      points += 1;
    }
  }
  if (stroke.length > before) {
    drawStroke(stroke, before);
    announce(false);
  }
});

function penUp(event) {
  if (pen === null || event.pointerId !== pen.id) return;
  pen = null;
  commit();
}
canvas.addEventListener("pointerup", penUp);
canvas.addEventListener("pointercancel", penUp);
canvas.addEventListener("lostpointercapture", penUp);

function undo() {
  if (pen !== null || strokes.length === 0) return;
  points -= strokes.pop().length;
  redraw();
  commit();
}

function clear() {
  if (pen !== null) return;
  strokes = [];
  points = 0;
  redraw();
  commit();
}

undoButton.addEventListener("click", undo);
clearButton.addEventListener("click", clear);
root.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  }
});

// Strokes from Python (an example, a reset): keep only well-formed ones, and show them.
function parse(value) {
  let list = value;
  if (typeof value === "string") {
    try {
      list = value.trim() ? JSON.parse(value) : [];
    } catch (error) {
      list = [];
    }
  }
  if (!Array.isArray(list)) return [];
  const isPoint = (p) => Array.isArray(p) && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]);
  return list
    .filter((stroke) => Array.isArray(stroke) && stroke.length > 0 && stroke.every(isPoint))
    .slice(0, C.max_strokes);
}

function load(value) {
  strokes = parse(value);
  points = strokes.reduce((n, stroke) => n + stroke.length, 0);
  redraw();
  announce(true);
}

watch("value", () => {
  if (props.value === sent) return;
  sent = props.value;
  pen = null;
  load(props.value);
});

new ResizeObserver(fitBitmap).observe(canvas);
fitBitmap();
load(props.value);
