// verdict.js: what the page says about its reading, word for word as mnist_demo/inference.py's Reading.
//
// `unsure_below`, `number_alternatives` and the "not a digit" sentences come from the server (ui/page_model.py's
// PAGE_READING); the sentences are inference.py's: "It's a 7 (98% sure).", "It's an 8 (...)", "Not sure: 4
// or 9?", "Reads 42 (90% sure).", "Reads 42, but not sure about some digits (4 or 9?)", and, when the
// checkpoint's "not a digit" rule declines a digit, "That does not look like a digit." (or "... a number: ...").
//
//   const words = MnistVerdict.words(C);
//   const declined = MnistVerdict.declines([output, ...], rule);  // rule: {decline_below, decline_score,
//                                                                 //        decline_weight} or null
//   words.describe([probabilities, ...], declined)  -> {text, verdict, declined, numbers: [[text, p], ...]}
//
// `probabilities` are the ten of each digit, left to right; each `output` is net.js's forward of that
// digit ({logits, residual}; the ten logits alone do for the scores that need nothing else); `declined`
// one boolean each (null: none). The rule is the model reference's (ui/page_model.py), applied as
// mnist_demo/reject.py's Decline applies it: the top softmax probability ("probability"), the log-sum-exp
// of the logits ("energy"), or that energy less `decline_weight` times the features' residual off the
// digits' subspace ("residual", in float64; the subspace comes with the weights, net.js) below
// `decline_below`. `MnistVerdict.scores(outputs, rule)` gives the scores themselves (null where the rule
// cannot be applied: no rule, or no residual). `numbers` is Reading.label() as pairs: all ten digits for
// one digit, else the likeliest numbers, best first.
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

  /** The energy of ten float32 logits: their log-sum-exp, rounded to float32 as torch's is. */
  function energy(logits) {
    const top = Math.max(...logits);
    let sum = 0;
    for (const z of logits) sum += Math.exp(z - top);
    return Math.fround(top + Math.log(sum));
  }

  // The scores of reject.py's Decline, of one digit's output ({logits, residual}); null when it cannot be
  // computed. `float32`: torch computes it in float32 and compares it with the threshold in float32.
  const SCORES = {
    probability: { float32: true, of: (o) => Math.max(...MnistNet.softmax(o.logits)) }, // the panel's (net.js)
    energy: { float32: true, of: (o) => energy(o.logits) },
    // Decline.scores: the float32 energy, then in float64 less the weight times the float64 residual
    residual: {
      float32: false,
      of: (o, rule) =>
        typeof o.residual === "number" && typeof rule.decline_weight === "number"
          ? energy(o.logits) - rule.decline_weight * o.residual
          : null,
    },
  };

  /** One digit's net.js output, or its ten logits alone: {logits, residual}. */
  const output = (o) => (Array.isArray(o) || ArrayBuffer.isView(o) ? { logits: o, residual: null } : o);

  /** The score `rule` compares of each digit's output: null for each without a rule (or one it cannot apply). */
  function scores(outputs, rule) {
    const below = rule ? rule.decline_below : null;
    const score = SCORES[(rule && rule.decline_score) || "probability"];
    if (below === null || below === undefined || !score) return outputs.map(() => null);
    return outputs.map((o) => score.of(output(o), rule));
  }

  /** Each digit's "declined" under `rule` ({decline_below, decline_score, decline_weight}); all false without a
   *  rule, and for a digit whose score cannot be computed (a "residual" rule and no residual: the server decides). */
  function declines(outputs, rule) {
    const values = scores(outputs, rule);
    if (values.every((v) => v === null)) return values.map(() => false);
    const score = SCORES[rule.decline_score || "probability"];
    const below = score.float32 ? Math.fround(rule.decline_below) : rule.decline_below;
    return values.map((v) => v !== null && v < below);
  }

  function words(C) {
    function describe(probabilities, declined = null) {
      const digits = probabilities.map((p, i) => {
        const digit = argmax(p);
        return { p, digit, confidence: p[digit], runnerUp: runnerUp(p), declined: Boolean(declined && declined[i]) };
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
      const anyDeclined = digits.some((d) => d.declined);
      let verdict;
      if (anyDeclined) {
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
      return { text, verdict, declined: anyDeclined, numbers };
    }
    return { describe };
  }

  globalThis.MnistVerdict = { words, declines, scores, energy, percent, argmax, runnerUp };
})();
