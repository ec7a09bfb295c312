// read.js: strokes -> the 28x28 digits the network reads, in the page: a port of mnist_demo/strokes.py.
//
// The same steps on the same numbers, float64 throughout, so the page's 28x28 images equal the server's
// (tests/test_page_reading.py compares them on hundreds of drawings; strokes.py's docstring describes
// the rules). Every constant comes from the server: C is ui/page_model.py's PAGE_READING, which holds
// mnist_demo.strokes.PAGE_CONSTANTS, segment.py's grouping rules and `input_values`, what
// mnist_demo.data.normalize makes of each uint8 value (float32, the net's input exactly as torch's).
//
//   const reader = MnistRead.reader(C);
//   reader.check(strokes)            -> [[x, y] ...] per stroke, or an Error saying what is wrong
//   reader.split(strokes, limit)     -> [{image: Uint8Array(784), input: Float32Array(784)}, ...] left to right
//   reader.sketch(strokes)           -> one digit of all strokes, or null for a dot or a blob
(() => {
  "use strict";

  // numpy's round: halves to even (0.5 -> 0, 1.5 -> 2), where Math.round sends them up.
  function roundHalfEven(v) {
    const r = Math.round(v);
    return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  const MARGIN = 1e-6; // px: segments this much beyond their reach are measured too, against rounding

  function describe(value) {
    if (Array.isArray(value)) return value.length ? `a list of ${value.length} items` : "an empty list";
    return value === null ? "NoneType" : typeof value;
  }

  function reader(C) {
    const N = C.image_size;

    // ---- the format (strokes.py `_arrays`): counts first, then every number
    function check(value) {
      if (!Array.isArray(value)) {
        throw new Error(`strokes must be a list of strokes, each a list of [x, y] points; got ${describe(value)}`);
      }
      if (!value.length) throw new Error("no strokes: the drawing is empty");
      if (value.length > C.max_strokes) throw new Error(`${value.length} strokes; a drawing here has at most ${C.max_strokes}`);
      let total = 0;
      value.forEach((stroke, i) => {
        if (!Array.isArray(stroke) || !stroke.length) {
          throw new Error(`stroke ${i} must be a non-empty list of [x, y] points, got ${describe(stroke)}`);
        }
        total += stroke.length;
        if (total > C.max_points) {
          throw new Error(`more than ${C.max_points} points in all; a drawing here has at most ${C.max_points}`);
        }
      });
      return value.map((stroke, i) => {
        const size = Array.isArray(stroke[0]) ? stroke[0].length : 0;
        return stroke.map((point, j) => {
          if (!Array.isArray(point) || (point.length !== 2 && point.length !== 3) || point.length !== size) {
            throw new Error(`stroke ${i}, point ${j}: expected [x, y] or [x, y, t] like the stroke's first point, got ${describe(point)}`);
          }
          for (const v of point) {
            if (typeof v !== "number") throw new Error(`stroke ${i}: every coordinate must be a number (not text, null or a list)`);
            if (!Number.isFinite(v) || Math.abs(v) > C.max_coord) {
              throw new Error(`stroke ${i}, point ${j}: coordinate ${v} is not a finite number within +-${C.max_coord}`);
            }
          }
          return [point[0], point[1]];
        });
      });
    }

    // ---- one digit

    // The box (x0, y0, x1, y1) of the points of some polylines.
    function bounds(lines) {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const line of lines) {
        for (let i = 0; i < line.length; i++) {
          const x = line[i][0], y = line[i][1];
          x0 = Math.min(x0, x); y0 = Math.min(y0, y);
          x1 = Math.max(x1, x); y1 = Math.max(y1, y);
        }
      }
      return [x0, y0, x1, y1];
    }

    // Drop points nearer than `step` to the last point kept (the last point always stays).
    function thin(line, step) {
      const kept = [line[0]];
      for (let i = 1; i < line.length - 1; i++) {
        const [x, y] = line[i], last = kept[kept.length - 1];
        const dx = x - last[0], dy = y - last[1];
        if (dx * dx + dy * dy >= step * step) kept.push(line[i]);
      }
      if (line.length > 1) kept.push(line[line.length - 1]);
      return kept;
    }

    // Polylines -> segments {ax, ay, bx, by} as flat arrays, each point p taken as (p - corner) * scale;
    // a one-point stroke is a segment of length 0 (a dot).
    function segments(lines, corner = [0, 0], scale = 1) {
      let n = 0;
      for (const line of lines) n += Math.max(1, line.length - 1);
      const ax = new Float64Array(n), ay = new Float64Array(n), bx = new Float64Array(n), by = new Float64Array(n);
      const cx = corner[0], cy = corner[1];
      let k = 0;
      for (const line of lines) {
        if (line.length === 1) {
          ax[k] = bx[k] = (line[0][0] - cx) * scale;
          ay[k] = by[k] = (line[0][1] - cy) * scale;
          k++;
        }
        for (let i = 1; i < line.length; i++, k++) {
          ax[k] = (line[i - 1][0] - cx) * scale;
          ay[k] = (line[i - 1][1] - cy) * scale;
          bx[k] = (line[i][0] - cx) * scale;
          by[k] = (line[i][1] - cy) * scale;
        }
      }
      return { ax, ay, bx, by, n };
    }

    // Squared distance from (px, py) to segment k of s, computed as strokes.py's `_distances` does.
    function distance2(px, py, s, k) {
      const ax = s.ax[k], ay = s.ay[k], dx = s.bx[k] - ax, dy = s.by[k] - ay;
      let length2 = dx * dx + dy * dy;
      if (length2 === 0) length2 = 1; // a dot: t is 0 whatever the divisor
      const ux = px - ax, uy = py - ay;
      const t = Math.min(Math.max((ux * dx + uy * dy) / length2, 0), 1);
      const ex = ux - t * dx, ey = uy - t * dy;
      return ex * ex + ey * ey;
    }

    // Step 4: 28x28 float ink in [0, 1] of segments in output pixels, a pen `radius` px; only pixels
    // within the ink's box (x0, y0, x1, y1), grown by a pixel, can hold ink. A pixel's ink is
    // clip(reach - d, 0, 1) for reach = radius + 1/2, so only segments within `reach` of it can matter:
    // each pixel measures those (found by the box of each segment, grown by `reach`), where strokes.py
    // measures all, and gets the same nearest distance whenever it is under `reach`.
    function draw(s, radius, box) {
      const ink = new Float64Array(N * N);
      const x0 = Math.max(0, Math.floor(box[0] - 1)), y0 = Math.max(0, Math.floor(box[1] - 1));
      const x1 = Math.min(N, Math.ceil(box[2] + 1)), y1 = Math.min(N, Math.ceil(box[3] + 1));
      if (x0 >= x1 || y0 >= y1) return ink;
      const reach = radius + 0.5, grow = reach + MARGIN;
      // Which pixels each segment may ink: a range of columns and rows; then each pixel's segments, in
      // one flat array (counted first, then filled), so that nothing is allocated per pixel.
      const ranges = new Int32Array(4 * s.n), count = new Int32Array(N * N + 1);
      for (let k = 0; k < s.n; k++) {
        const c0 = Math.max(x0, Math.ceil(Math.min(s.ax[k], s.bx[k]) - grow - 0.5));
        const c1 = Math.min(x1 - 1, Math.floor(Math.max(s.ax[k], s.bx[k]) + grow - 0.5));
        const r0 = Math.max(y0, Math.ceil(Math.min(s.ay[k], s.by[k]) - grow - 0.5));
        const r1 = Math.min(y1 - 1, Math.floor(Math.max(s.ay[k], s.by[k]) + grow - 0.5));
        ranges[4 * k] = c0;
        ranges[4 * k + 1] = c1;
        ranges[4 * k + 2] = r0;
        ranges[4 * k + 3] = r1;
        for (let y = r0; y <= r1; y++) for (let x = c0; x <= c1; x++) count[y * N + x + 1] += 1;
      }
      for (let i = 0; i < N * N; i++) count[i + 1] += count[i]; // count[i]: where pixel i's list starts
      const lists = new Int32Array(count[N * N]), filled = count.slice(0, N * N);
      for (let k = 0; k < s.n; k++) {
        const c0 = ranges[4 * k], c1 = ranges[4 * k + 1], r0 = ranges[4 * k + 2], r1 = ranges[4 * k + 3];
        for (let y = r0; y <= r1; y++) for (let x = c0; x <= c1; x++) lists[filled[y * N + x]++] = k;
      }
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const i = y * N + x;
          let nearest = Infinity;
          for (let j = count[i]; j < count[i + 1]; j++) nearest = Math.min(nearest, distance2(x + 0.5, y + 0.5, s, lists[j]));
          ink[i] = Math.min(Math.max(reach - Math.sqrt(nearest), 0), 1);
        }
      }
      return ink;
    }

    // (x, y) of the ink's centre of mass, pixel edges at whole numbers (a pixel's centre at i + 1/2).
    function centreOfMass(ink) {
      let mass = 0, mx = 0, my = 0;
      for (let y = 0; y < N; y++) {
        for (let x = 0; x < N; x++) {
          const v = ink[y * N + x];
          mass += v;
          mx += v * (x + 0.5);
          my += v * (y + 0.5);
        }
      }
      return [mx / mass, my / mass];
    }

    // One digit's centrelines (canvas units) -> {image, input}; null for a dot or a blob (strokes.py `_sketch`).
    function sketchOf(lines, brush) {
      const [lowX, lowY, highX, highY] = bounds(lines);
      const extent = Math.max(highX - lowX, highY - lowY);
      if (extent === 0) return null; // a dot alone: no digit, and no size to draw one at
      // Step 2: the pen width over the ink box's longest side, brought within MNIST's range.
      const drawn = brush / (extent + brush);
      if (drawn > C.max_stroke_ratio) return null; // a dab or a blob, not a digit
      const ratio = Math.min(Math.max(drawn, C.stroke_range[0]), C.stroke_range[1]);
      const width = ratio === drawn ? brush : (ratio * extent) / (1 - ratio);
      // Steps 1 and 3: the ink box (centrelines +- width / 2) fits digit_box output pixels.
      const fit = C.digit_box / (extent + width); // output pixels per canvas unit
      const radius = (width * fit) / 2;
      const inkLow = [lowX - width / 2, lowY - width / 2], inkHigh = [highX + width / 2, highY + width / 2];
      const thinned = lines.map((line) => thin(line, C.step / fit));

      const render = (corner) => {
        const s = segments(thinned, corner, fit);
        const box = [(inkLow[0] - corner[0]) * fit, (inkLow[1] - corner[1]) * fit, (inkHigh[0] - corner[0]) * fit, (inkHigh[1] - corner[1]) * fit];
        return draw(s, radius, box);
      };
      // Step 5: draw with the box centred, find the centre of mass, draw again with it at MNIST's.
      const view = N / fit; // canvas units across the output
      const first = [0, 1].map((a) => (inkLow[a] + inkHigh[a]) / 2 - view / 2);
      const com = centreOfMass(render(first));
      const corner = [0, 1].map((a) => {
        const c = first[a] + com[a] / fit - (C.target_com + 0.5) / fit;
        return Math.min(Math.max(c, inkHigh[a] - view), inkLow[a]); // the box stays inside 28 x 28
      });
      const ink = render(corner);
      const image = new Uint8Array(N * N), input = new Float32Array(N * N);
      for (let i = 0; i < N * N; i++) {
        image[i] = roundHalfEven(ink[i] * 255);
        input[i] = C.input_values[image[i]];
      }
      return { image, input };
    }

    function sketch(strokes) {
      return sketchOf(check(strokes), C.brush);
    }

    // ---- several digits

    // Do segments a (p0 -> p1) and b (q0 -> q1) properly cross? By the signs of cross products.
    function crossing(p0x, p0y, p1x, p1y, q0x, q0y, q1x, q1y) {
      const side = (px, py, qx, qy, rx, ry) => (qx - px) * (ry - py) - (qy - py) * (rx - px);
      return (
        side(p0x, p0y, p1x, p1y, q0x, q0y) * side(p0x, p0y, p1x, p1y, q1x, q1y) < 0 &&
        side(q0x, q0y, q1x, q1y, p0x, p0y) * side(q0x, q0y, q1x, q1y, p1x, p1y) < 0
      );
    }

    // Do polylines a and b come within `reach` of each other: an end of a segment of one near a segment
    // of the other, or two segments crossing (strokes.py `_touch` and `_near`).
    function touch(a, b, reach) {
      const sa = segments([a]), sb = segments([b]);
      const near = (px, py, s) => {
        for (let k = 0; k < s.n; k++) if (Math.sqrt(distance2(px, py, s, k)) <= reach) return true;
        return false;
      };
      for (let i = 0; i < sa.n; i++) {
        if (near(sa.ax[i], sa.ay[i], sb) || near(sa.bx[i], sa.by[i], sb)) return true;
      }
      for (let j = 0; j < sb.n; j++) {
        if (near(sb.ax[j], sb.ay[j], sa) || near(sb.bx[j], sb.by[j], sa)) return true;
      }
      for (let i = 0; i < sa.n; i++) {
        for (let j = 0; j < sb.n; j++) {
          if (crossing(sa.ax[i], sa.ay[i], sa.bx[i], sa.by[i], sb.ax[j], sb.ay[j], sb.bx[j], sb.by[j])) return true;
        }
      }
      return false;
    }

    // Strokes whose centrelines come within `reach` -> pieces, each the list of its strokes, in stroke order.
    function pieces(lines, reach) {
      const owner = lines.map((_, i) => i); // union-find
      const root = (i) => {
        while (owner[i] !== i) i = owner[i];
        return i;
      };
      const boxes = lines.map((line) => bounds([line]));
      for (let i = 0; i < lines.length; i++) {
        for (let j = i + 1; j < lines.length; j++) {
          const a = boxes[i], b = boxes[j];
          if (Math.max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3]) > reach) continue;
          if (root(i) !== root(j) && touch(lines[i], lines[j], reach)) owner[root(j)] = root(i);
        }
      }
      const byRoot = new Map();
      lines.forEach((_, i) => {
        const r = root(i);
        if (!byRoot.has(r)) byRoot.set(r, []);
        byRoot.get(r).push(i);
      });
      return [...byRoot.values()];
    }

    // mnist_demo/segment.py's Group and `one_digit`: pieces that are strokes of one digit.
    const group = (labels, top, left, bottom, right) => ({ labels, top, left, bottom, right });
    const height = (g) => g.bottom - g.top, widthOf = (g) => g.right - g.left;
    const join = (a, b) =>
      group([...a.labels, ...b.labels], Math.min(a.top, b.top), Math.min(a.left, b.left), Math.max(a.bottom, b.bottom), Math.max(a.right, b.right));
    const gap = (a, b) =>
      Math.max(Math.max(b.left - a.right, a.left - b.right, 0), Math.max(b.top - a.bottom, a.top - b.bottom, 0));

    function oneDigit(a, b) {
      const overlap = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      if (overlap >= C.same_column * Math.min(widthOf(a), widthOf(b))) return true;
      const [short, tall] = height(b) < height(a) ? [b, a] : [a, b]; // sorted by height, stable
      const both = join(a, b);
      return height(short) < C.short_piece * height(tall) && gap(a, b) <= C.near * height(tall) && widthOf(both) <= C.max_aspect * height(both);
    }

    // segment.py `group_boxes`: join the closest pair that belongs together first, until none does; the
    // same heap of (gap, i, j, version i, version j), so ties fall the same way.
    function groupBoxes(boxes) {
      const groups = boxes.map(([top, left, bottom, right], i) => group([i], top, left, bottom, right));
      const version = groups.map(() => 0);
      const heap = [];
      const less = (a, b) => {
        for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return a[k] < b[k];
        return false;
      };
      const push = (item) => {
        heap.push(item);
        for (let i = heap.length - 1; i > 0; ) {
          const parent = (i - 1) >> 1;
          if (!less(heap[i], heap[parent])) break;
          [heap[i], heap[parent]] = [heap[parent], heap[i]];
          i = parent;
        }
      };
      const pop = () => {
        const top = heap[0], last = heap.pop();
        if (heap.length) {
          heap[0] = last;
          for (let i = 0; ; ) {
            const l = 2 * i + 1, r = l + 1;
            let m = i;
            if (l < heap.length && less(heap[l], heap[m])) m = l;
            if (r < heap.length && less(heap[r], heap[m])) m = r;
            if (m === i) break;
            [heap[i], heap[m]] = [heap[m], heap[i]];
            i = m;
          }
        }
        return top;
      };
      const offer = (i, j) => {
        if (oneDigit(groups[i], groups[j])) push([gap(groups[i], groups[j]), i, j, version[i], version[j]]);
      };
      for (let i = 0; i < groups.length; i++) for (let j = i + 1; j < groups.length; j++) offer(i, j);
      while (heap.length) {
        const [, i, j, seenI, seenJ] = pop();
        if (seenI !== version[i] || seenJ !== version[j]) continue;
        groups[i] = join(groups[i], groups[j]);
        groups[j] = null;
        version[i] += 1;
        version[j] += 1;
        groups.forEach((other, k) => {
          if (other !== null && k !== i) offer(Math.min(i, k), Math.max(i, k));
        });
      }
      const joined = groups.filter((g) => g !== null);
      joined.sort((a, b) => a.left + a.right - (b.left + b.right)); // by box centre; sort is stable
      return joined.map((g) => g.labels);
    }

    // A drawing of one or more digits -> a sketch per digit, left to right; only the first `limit` drawn.
    function split(strokes, limit = Infinity) {
      const lines = check(strokes);
      const found = pieces(lines, C.touch * C.brush);
      const half = C.brush / 2;
      const boxes = found.map((piece) => {
        const [left, top, right, bottom] = bounds(piece.map((i) => lines[i]));
        return [top - half, left - half, bottom + half, right + half];
      });
      const sketches = [];
      for (const labels of groupBoxes(boxes)) {
        const s = sketchOf(labels.flatMap((p) => found[p].map((i) => lines[i])), C.brush);
        if (s !== null) {
          sketches.push(s);
          if (sketches.length === limit) break;
        }
      }
      return sketches;
    }

    return { check, sketch, split, groupBoxes };
  }

  globalThis.MnistRead = { reader, roundHalfEven };
})();
