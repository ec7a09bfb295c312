// map.js: the page's own readings on the map of digits, while the pen moves.
//
// Runs as the js_on_load of the gr.HTML that ui/atlas.py builds (`element`, `props` and `watch` come from
// Gradio). The component's value is JSON sent by the server for the picked model (mnist_demo/mapview.py
// `page_map`): {modelHash, mean: [F], matrix: [[F], [F]], layout: {side, pad, centre: [x, y], half}, mark}.
// The map itself is the picture in the gr.Image #map, drawn by the server on pen-up.
//
// The event it listens to (the page's reader dispatches it on every reading it makes in the page):
//
//   window.dispatchEvent(new CustomEvent("mnist-demo:reading", {detail: {
//     features,       // Float32Array or number[]: the classifier's input (MnistNet's `features`), or null
//                     //   when there is nothing to read (the pad was cleared): the marker is hidden
//     modelHash,      // the page model's content hash (mnist_demo.webmodel); readings of another model are ignored
//     label, probabilities, input,   // the reading itself; not used here
//   }}));
//
// A reading of the map's model moves a ring over the picture to where the server would draw it:
// point = (features - mean) @ matrix.T, then pixel as in charts.MapLayout.to_pixels, kept `mark`
// pixels inside the square as charts.map_picture keeps it. The ring hides when the server's next
// picture arrives (it has the drawing on it). window.mnistDemo.map.last holds the last placement,
// in the picture's own pixels, for tests.
const PICTURE = "#map"; // the gr.Image holding the server's map picture
const demo = (window.mnistDemo = window.mnistDemo || {});
let map = null;

function follow() {
  try {
    map = props.value ? JSON.parse(props.value) : null;
  } catch (err) {
    console.warn("map: the value is not JSON", err);
    map = null;
  }
  hide();
}

/** (features - mean) @ matrix.T: the reading's point on the map, in map units. */
function project(features) {
  const [a, b] = map.matrix;
  let x = 0, y = 0;
  for (let i = 0; i < map.mean.length; i++) {
    const f = features[i] - map.mean[i];
    x += f * a[i];
    y += f * b[i];
  }
  return [x, y];
}

/** A map point -> pixel (x, y) of the picture, y down, kept inside the square like the server's marker. */
function toPixels([x, y]) {
  const { side, pad, centre, half } = map.layout;
  const scale = (side / 2 - pad) / half;
  const clamp = (v) => Math.min(Math.max(v, map.mark), side - 1 - map.mark);
  return [clamp(side / 2 + (x - centre[0]) * scale), clamp(side / 2 - (y - centre[1]) * scale)];
}

/** The shown picture's content box: where pixel (0, 0) is drawn and how many screen pixels one takes. */
function contentBox(img) {
  const box = img.getBoundingClientRect();
  const nw = img.naturalWidth, nh = img.naturalHeight;
  if (getComputedStyle(img).objectFit === "contain") {
    const scale = Math.min(box.width / nw, box.height / nh);
    return { left: box.left + (box.width - nw * scale) / 2, top: box.top + (box.height - nh * scale) / 2, sx: scale, sy: scale };
  }
  return { left: box.left, top: box.top, sx: box.width / nw, sy: box.height / nh };
}

function ring(root) {
  let marker = root.querySelector(".map-live-marker");
  if (!marker) {
    marker = document.createElement("div");
    marker.className = "map-live-marker";
    Object.assign(marker.style, {
      position: "absolute",
      borderRadius: "50%",
      border: "3px solid #1e1e1e",
      background: "rgba(255, 255, 255, 0.85)",
      boxSizing: "border-box",
      pointerEvents: "none",
      zIndex: 10,
    });
    if (getComputedStyle(root).position === "static") root.style.position = "relative";
    root.appendChild(marker);
  }
  return marker;
}

function show([px, py]) {
  const root = document.querySelector(PICTURE);
  const img = root && root.querySelector("img");
  if (!img || !img.naturalWidth) return false;
  const content = contentBox(img), origin = root.getBoundingClientRect();
  const marker = ring(root), size = 2 * map.mark * content.sx;
  Object.assign(marker.style, {
    display: "block",
    width: `${size}px`,
    height: `${size}px`,
    left: `${content.left - origin.left + (px + 0.5) * content.sx - size / 2}px`,
    top: `${content.top - origin.top + (py + 0.5) * content.sy - size / 2}px`,
  });
  watchPicture(root, img);
  return true;
}

function hide() {
  const marker = document.querySelector(`${PICTURE} .map-live-marker`);
  if (marker) marker.style.display = "none";
}

// The server's next picture (a new src, or a new img) replaces the ring: it shows the drawing itself.
let watched = null;
function watchPicture(root, img) {
  if (watched && watched.img === img) return;
  if (watched) watched.observer.disconnect();
  const src = img.src;
  const observer = new MutationObserver(() => {
    const now = root.querySelector("img");
    if (!now || now !== img || now.src !== src) {
      hide();
      observer.disconnect();
      watched = null;
    }
  });
  observer.observe(root, { subtree: true, childList: true, attributes: true, attributeFilter: ["src"] });
  watched = { img, observer };
}

function onReading(event) {
  const detail = event.detail || {};
  if (!map || detail.modelHash !== map.modelHash || !map.modelHash) return;
  if (!detail.features) {
    demo.map.last = null;
    return hide();
  }
  if (detail.features.length !== map.mean.length) {
    return console.warn(`map: ${detail.features.length} features, the map expects ${map.mean.length}`);
  }
  const point = project(detail.features);
  const [x, y] = toPixels(point);
  demo.map.last = { point, x, y, shown: show([x, y]) };
}

if (demo.map && demo.map.listener) window.removeEventListener("mnist-demo:reading", demo.map.listener);
demo.map = { last: null, listener: onReading, project: (f) => project(f), toPixels: (p) => toPixels(p) };
window.addEventListener("mnist-demo:reading", onReading);
follow();
watch("value", follow);
