// live.js: the reading while the pen moves, with the model in the page (issue 14).
//
// MnistLive.start(C, models) runs once, from the js_on_load of ui/page_model.py's component (C: its
// `constants` prop, PAGE_READING; models: window.mnistDemo.models from page_model.js). It adds
//
//   window.mnistDemo.read(strokes) -> the page's reading of strokes (the pad's value, parsed), or null
//       when the page cannot read (no model in the page yet or at all, a model that failed, disabled):
//       {source: "page", label, verdict, digits: [{probabilities, input, score, declined}], numbers, declined,
//        probabilities, input, features, modelHash, ms}
//       label: the digits read ("7", "42"; "" when nothing is), verdict: inference.py's sentence (null
//       when nothing is read: an empty pad, a dot), probabilities / input / features: one array per digit
//       (10 probabilities, 784 uint8 pixels of what the network saw, the classifier's input), numbers:
//       Reading.label() as [text, p] pairs, ms: how long the reading took. Throws an Error for strokes
//       that are not strokes, with strokes.py's message.
//       declined: true when the model's "not a digit" rule (its reference's decline_below, decline_score
//       and decline_weight; verdict.js) declines some digit, as inference.Reading.declined; the verdict then
//       says so. Each digit's score is the rule's (null without one) and its declined whether it is below.
//   window.mnistDemo.pageReads() -> whether the page reads now (a model arrived and working, not disabled):
//       the reading panel then keeps a server reading of older strokes or of another model off screen.
//   window.mnistDemo.disabled -> true: the page reads nothing and the server's reading is all there is.
//       Set it from a script, or open the page with ?page_model=off.
//   window.mnistDemo.live -> {readings, skipped, lastMs, last}: counts for tests and the benchmark.
//
// and listens to the stroke pad's 'strokes' events (mnist_demo/web/pad.js): each one's strokes are read
// after the frame that announced them is drawn (a timer, never inside the pad's own handlers), at most
// once per event and, while the pen moves, never more than half the time: after a reading that took t ms
// the next waits t ms, so a slow model skips frames instead of slowing the pen. After pen-up, Undo or
// Clear, and when the model changes, the strokes are read at once. Each reading goes to
// window.mnistDemo.showReading(reading) when the page has one (the reading panel), and to
//   window.dispatchEvent(new CustomEvent("mnist-demo:reading", {detail: {features, modelHash, label,
//   probabilities, input}}))
// for anyone else (the map). A new model in the page (picked, trained an epoch further) reads the
// strokes on the pad again. The server still reads on pen-up and stays the reference.
(() => {
  "use strict";

  const DISABLE_PARAM = "page_model"; // ?page_model=off turns the page's reading off
  const BUSY_SHARE = 0.5; // the reader takes at most this share of the time while the pen moves

  function start(C, models) {
    const demo = (window.mnistDemo = window.mnistDemo || {});
    if (new URLSearchParams(window.location.search).get(DISABLE_PARAM) === "off") demo.disabled = true;
    const reader = MnistRead.reader(C);
    const words = MnistVerdict.words(C);
    const broken = new Set(); // hashes of models that threw while reading: the server reads for them
    const live = (demo.live = { readings: 0, skipped: 0, lastMs: 0, last: null });

    /** The model the page reads with now: the one the component names, arrived and working; or null. */
    function usable() {
      const net = models.current;
      if (demo.disabled || !net || net.hash !== models.currentHash || broken.has(net.hash)) return null;
      return net;
    }

    function read(strokes) {
      const net = usable();
      if (!net) return null;
      const start = performance.now();
      const empty = Array.isArray(strokes) && strokes.length === 0; // an empty pad: nothing to read
      const sketches = empty ? [] : reader.split(strokes, C.max_digits); // throws for garbage
      let outputs;
      try {
        outputs = sketches.map((s) => net.forward(s.input));
      } catch (err) {
        broken.add(net.hash);
        console.warn("page reading: this model cannot run in the page; the server reads instead.", err);
        return null;
      }
      const probabilities = outputs.map((o) => Array.from(o.probabilities));
      const input = sketches.map((s) => Array.from(s.image));
      const ref = models.currentRef;
      const rule = ref && ref.hash === net.hash ? ref : null; // its decline_below, decline_score and decline_weight
      const scores = MnistVerdict.scores(outputs, rule);
      const declined = MnistVerdict.declines(outputs, rule);
      const said = sketches.length
        ? words.describe(probabilities, declined)
        : { text: "", verdict: null, declined: false, numbers: [] };
      return {
        source: "page",
        label: said.text,
        verdict: said.verdict,
        digits: probabilities.map((p, i) => ({
          probabilities: p,
          input: input[i],
          score: scores[i],
          declined: declined[i],
        })),
        numbers: said.numbers,
        declined: said.declined,
        probabilities,
        input,
        features: outputs.map((o) => Array.from(o.features)),
        modelHash: net.hash,
        ms: performance.now() - start,
      };
    }
    demo.read = read;
    demo.pageReads = () => usable() !== null;

    // ---- following the pad
    let strokes = null; // the last strokes the pad announced (its live arrays: read, never changed)
    let timer = 0; // the pending reading, 0 when none
    let readyAt = 0; // performance.now() before which no reading starts

    function show() {
      timer = 0;
      let reading = null;
      try {
        reading = read(strokes);
      } catch (err) {
        console.warn("page reading:", err.message); // strokes the server will refuse with its own message
      }
      if (!reading) return;
      live.readings += 1;
      live.lastMs = reading.ms;
      live.last = reading;
      readyAt = performance.now() + (reading.ms * (1 - BUSY_SHARE)) / BUSY_SHARE;
      if (typeof demo.showReading === "function") {
        try {
          demo.showReading(reading);
        } catch (err) {
          console.warn("page reading: showReading failed", err);
        }
      }
      const { features, modelHash, label, probabilities, input } = reading;
      window.dispatchEvent(
        new CustomEvent("mnist-demo:reading", { detail: { features, modelHash, label, probabilities, input } }),
      );
    }

    // A reading: while the pen moves, after the frame and the wait; at once when it is up (nothing to
    // keep smooth then, and the page's reading comes before the server's, which then replaces it).
    function schedule(penUp = false) {
      if (strokes === null || usable() === null) return;
      if (penUp) {
        clearTimeout(timer);
        show();
      } else if (timer) {
        live.skipped += 1; // a reading is due already: it will read these newer strokes
      } else {
        timer = setTimeout(show, Math.max(0, readyAt - performance.now()));
      }
    }

    document.addEventListener("strokes", (event) => {
      strokes = event.detail.strokes;
      schedule(!event.detail.drawing);
    });
    models.onChange((net) => {
      if (net) schedule(true); // new weights: the same strokes, read again
      else if (demo.panel && demo.panel.restore) demo.panel.restore(); // none: the server's last answer shows
    });
    return demo;
  }

  globalThis.MnistLive = { start };
})();
