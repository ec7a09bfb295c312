// verdict.js: what the page says about its reading, word for word as mnist_demo/inference.py's Reading.
//
// `unsure_below`, `number_alternatives` and the "not a digit" sentences come from the server (ui/page_model.py's
// PAGE_READING); the sentences are inference.py's: "It's a 7 (98% sure).", "It's an 8 (...)", "Not sure: 4
// or 9?", "Reads 42 (90% sure).", "Reads 42, but not sure about some digits (4 or 9?)", and, when a digit's
// top probability is below the checkpoint's threshold (`declineBelow`, the model reference's
// decline_below; null: never), "That does not look like a digit." (or "... a number: ...").
//
//   const words = MnistVerdict.words(C);
//   words.describe([probabilities, ...], declineBelow)  -> {text, verdict, declined, numbers: [[text, p], ...]}
//
// `probabilities` are the ten of each digit, left to right; `numbers` is Reading.label() as pairs: all
// ten digits for one digit, else the likeliest numbers, best first.
(() => {
  "use strict";

  /** The first index of the largest value (numpy's argmax). */
  function argmax(p) {
    let best = 0;
    for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
    return best;
  }

  /** The second-to-last index of a stable ascending sort (numpy's argsort(p)[-2] on ten values). */
  function runnerUp(p) {
    const order = Array.from(p, (_, i) => i).sort((a, b) => p[a] - p[b]);
    return order[order.length - 2];
  }

  /** Python's f"{x:.0%}": x * 100 rounded to a whole number, halves to even, then "%". */
  function percent(x) {
    return `${MnistRead.roundHalfEven(x * 100)}%`;
  }

  const withArticle = (digit) => `${digit === 8 ? "an" : "a"} ${digit}`;

  function words(C) {
    function describe(probabilities, declineBelow = null) {
      // inference.read_sketches compares float32 probabilities with the threshold in float32 (NumPy 2).
      const below = declineBelow === null || declineBelow === undefined ? -1 : Math.fround(declineBelow);
      const digits = probabilities.map((p) => {
        const digit = argmax(p);
        return { p, digit, confidence: p[digit], runnerUp: runnerUp(p), declined: p[digit] < below };
      });
      const text = digits.map((d) => d.digit).join("");
      let confidence = 1; // the product over the digits, in order, as np.prod
      for (const d of digits) confidence *= d.confidence;

      let numbers;
      if (digits.length === 1) {
        numbers = Array.from(digits[0].p, (v, i) => [String(i), v]);
      } else {
        const readings = new Map([[text, confidence]]);
        // The next likeliest numbers differ from the best one in one digit, swapped for its runner-up.
        digits.forEach((d, i) => {
          const other = text.slice(0, i) + d.runnerUp + text.slice(i + 1);
          readings.set(other, (confidence / d.confidence) * d.p[d.runnerUp]);
        });
        numbers = [...readings].sort((a, b) => b[1] - a[1]).slice(0, C.number_alternatives + 1);
      }

      const doubtful = digits.filter((d) => d.confidence < C.unsure_below);
      const declined = digits.some((d) => d.declined);
      let verdict;
      if (declined) {
        verdict = digits.length === 1 ? C.not_a_digit : C.not_a_number;
      } else if (digits.length === 1) {
        const d = digits[0];
        verdict = doubtful.length
          ? `Not sure: ${d.digit} or ${d.runnerUp}?`
          : `It's ${withArticle(d.digit)} (${percent(d.confidence)} sure).`;
      } else if (doubtful.length) {
        const alternatives = doubtful.map((d) => `${d.digit} or ${d.runnerUp}`).join(", ");
        verdict = `Reads ${text}, but not sure about some digits (${alternatives}?)`;
      } else {
        verdict = `Reads ${text} (${percent(confidence)} sure).`;
      }
      return { text, verdict, declined, numbers };
    }
    return { describe };
  }

  globalThis.MnistVerdict = { words, percent, argmax, runnerUp };
})();
