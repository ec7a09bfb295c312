// net.js: the networks of mnist_demo (the guide's MLP, the small CNN) run in the page.
//
// It reads the format mnist_demo/webmodel.py writes: a JSON header listing the layers in order (crop,
// conv3x3, maxpool2, affine, relu, linear) with their sizes and where their tensors lie in one float32
// array. Batch norm arrives folded into the convolutions, so these six layers are all there is.
// tests/test_page_model.py checks it against torch in chromium; bench/page_model.py times it.
//
//   const net = MnistNet.fromPayload(payload);       // payload = {header, weights: base64}
//   const {logits, probabilities, features, residual} = net.forward(image);   // image: 784 normalised values
//
// `residual` is null unless the header has a "residual" block: the subspace of the "residual" score
// (mnist_demo/residual.py; its mean and its (features, rank) basis lie in the same array). It is then the
// length of the features' part off that subspace, in float64, as residual.Subspace.residual computes it
// from the float32 features: ||z - B (B^T z)|| with z = features - mean. verdict.js combines it with the
// logits' energy.
//
// The weights travel as float32; the page computes in float64 (Float64Array buffers): V8 then loads
// each value without a conversion, which is faster, and rounds less than torch does.
// Each layer becomes a step with its output buffer allocated once, so a forward pass allocates only
// the three small Float32Arrays it returns: it runs on every pen move.
(() => {
  "use strict";

  const FORMAT = "mnist-demo-page/1"; // mnist_demo/webmodel.py FORMAT
  const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

  /** The base64 weights of a payload as a Float32Array of `floats` values (little-endian on the wire). */
  function decodeWeights(base64, floats) {
    const text = atob(base64);
    if (text.length !== 4 * floats) {
      throw new Error(`weights hold ${text.length} bytes, the header says ${4 * floats}`);
    }
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    if (LITTLE_ENDIAN) return new Float32Array(bytes.buffer);
    const view = new DataView(bytes.buffer);
    return Float32Array.from({ length: floats }, (_, i) => view.getFloat32(4 * i, true));
  }

  /** The tensor `ref` ({offset, shape}) of `weights`, checked against the shape the layer needs. */
  function tensor(weights, ref, shape, what) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (!ref || String(ref.shape) !== String(shape)) {
      throw new Error(`${what} should have shape [${shape}], the header says [${ref && ref.shape}]`);
    }
    if (!(ref.offset >= 0 && ref.offset + size <= weights.length)) {
      throw new Error(`${what} lies outside the weights`);
    }
    return weights.subarray(ref.offset, ref.offset + size);
  }

  // ---- the layers: each takes its input's shape [c, h, w] and returns {shape, run(input) -> output}

  function crop([c, h, w], pixels) {
    const rows = h - 2 * pixels, cols = w - 2 * pixels;
    const out = new Float64Array(c * rows * cols);
    return {
      shape: [c, rows, cols],
      run(x) {
        for (let ch = 0; ch < c; ch++) {
          for (let y = 0; y < rows; y++) {
            const from = (ch * h + y + pixels) * w + pixels;
            out.set(x.subarray(from, from + cols), (ch * rows + y) * cols);
          }
        }
        return out;
      },
    };
  }

  // 3x3 convolution, padding 1, no bias; nearly all of the page's time goes here. The input is copied
  // into a zero-bordered buffer so the inner loop needs no bounds checks. The loop computes a 2x2 block
  // at once, two output channels by two output rows, walking along the rows with the 4x3 window of
  // inputs sliding one column per step: 4 new inputs feed 36 multiply-adds, and each pair's 18 weights
  // sit in locals, where one channel and one row at a time would load 9 inputs for 9 multiply-adds.
  // Odd channel and row counts are padded with zeros and dropped at the end.
  // Only `rows` x `cols` of the output are computed: a 2x2 max-pool next drops an odd last row and column.
  function conv3x3([cin, h, w], cout, weight, rows, cols) {
    const pairs = Math.ceil(cout / 2), pw = w + 2, plane = (h + 3) * pw; // + a spare zero row below
    const evenRows = rows + (rows % 2), area = evenRows * cols;
    const k = new Float64Array(2 * pairs * cin * 9); // the weights, then zeros for an odd last channel
    k.set(weight);
    const padded = new Float64Array(cin * plane); // its border stays zero
    const out = new Float64Array(2 * pairs * area);
    return {
      shape: [cout, rows, cols],
      run(x) {
        for (let c = 0; c < cin; c++) {
          for (let y = 0; y < h; y++) {
            padded.set(x.subarray((c * h + y) * w, (c * h + y + 1) * w), c * plane + (y + 1) * pw + 1);
          }
        }
        out.fill(0);
        for (let co = 0; co < cout; co += 2) {
          for (let ci = 0; ci < cin; ci++) {
            const p = (co * cin + ci) * 9, q = p + cin * 9; // the 3x3 kernels of channels co and co + 1
            const a0 = k[p], a1 = k[p + 1], a2 = k[p + 2], a3 = k[p + 3], a4 = k[p + 4];
            const a5 = k[p + 5], a6 = k[p + 6], a7 = k[p + 7], a8 = k[p + 8];
            const b0 = k[q], b1 = k[q + 1], b2 = k[q + 2], b3 = k[q + 3], b4 = k[q + 4];
            const b5 = k[q + 5], b6 = k[q + 6], b7 = k[q + 7], b8 = k[q + 8];
            for (let y = 0; y < rows; y += 2) {
              let i = ci * plane + y * pw; // the window's top-left corner in `padded`
              let j = co * area + y * cols; // output (co, y, col); row y + 1 is `cols` on, co + 1 `area` on
              // The window's first two columns, rows 0-3 of it: L = left column, M = middle.
              let L0 = padded[i], M0 = padded[i + 1], L1 = padded[i + pw], M1 = padded[i + pw + 1];
              let L2 = padded[i + 2 * pw], M2 = padded[i + 2 * pw + 1];
              let L3 = padded[i + 3 * pw], M3 = padded[i + 3 * pw + 1];
              for (let col = 0; col < cols; col++, i++, j++) {
                const R0 = padded[i + 2], R1 = padded[i + pw + 2], R2 = padded[i + 2 * pw + 2];
                const R3 = padded[i + 3 * pw + 2]; // R = the right column, new at this step
                out[j] += a0 * L0 + a1 * M0 + a2 * R0 + a3 * L1 + a4 * M1 + a5 * R1 + a6 * L2 + a7 * M2 + a8 * R2;
                out[j + cols] += a0 * L1 + a1 * M1 + a2 * R1 + a3 * L2 + a4 * M2 + a5 * R2 + a6 * L3 + a7 * M3 + a8 * R3;
                out[j + area] += b0 * L0 + b1 * M0 + b2 * R0 + b3 * L1 + b4 * M1 + b5 * R1 + b6 * L2 + b7 * M2 + b8 * R2;
                out[j + area + cols] +=
                  b0 * L1 + b1 * M1 + b2 * R1 + b3 * L2 + b4 * M2 + b5 * R2 + b6 * L3 + b7 * M3 + b8 * R3;
                L0 = M0; M0 = R0; L1 = M1; M1 = R1; L2 = M2; M2 = R2; L3 = M3; M3 = R3;
              }
            }
          }
        }
        if (evenRows === rows) return out;
        for (let c = 1; c < cout; c++) out.copyWithin(c * rows * cols, c * area, c * area + rows * cols);
        return out.subarray(0, cout * rows * cols);
      },
    };
  }

  // 2x2 max-pool, stride 2, rounding down as torch's MaxPool2d(2) does.
  function maxpool2([c, h, w]) {
    const rows = Math.floor(h / 2), cols = Math.floor(w / 2);
    const out = new Float64Array(c * rows * cols);
    return {
      shape: [c, rows, cols],
      run(x) {
        let j = 0;
        for (let ch = 0; ch < c; ch++) {
          for (let y = 0; y < rows; y++) {
            let i = (ch * h + 2 * y) * w;
            for (let xx = 0; xx < cols; xx++, i += 2) {
              out[j++] = Math.max(x[i], x[i + 1], x[i + w], x[i + w + 1]);
            }
          }
        }
        return out;
      },
    };
  }

  // Per-channel scale and shift: batch norm's shift, and its sign where the conv took its size.
  function affine([c, h, w], scale, shift) {
    const out = new Float64Array(c * h * w), n = h * w;
    return {
      shape: [c, h, w],
      run(x) {
        for (let ch = 0, i = 0; ch < c; ch++) {
          const s = scale[ch], t = shift[ch];
          for (let end = i + n; i < end; i++) out[i] = s * x[i] + t;
        }
        return out;
      },
    };
  }

  function relu(shape) {
    const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
    return {
      shape,
      run(x) {
        for (let i = 0; i < out.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
        return out;
      },
    };
  }

  // y = W x + b on the flattened input ((C, H, W) row-major is torch's flatten order); W is (out, in).
  function linear(inputs, outputs, weight, bias) {
    const out = new Float64Array(outputs);
    return {
      shape: [outputs, 1, 1],
      run(x) {
        for (let o = 0; o < outputs; o++) {
          let sum = bias[o];
          for (let i = 0, k = o * inputs; i < inputs; i++, k++) sum += weight[k] * x[i];
          out[o] = sum;
        }
        return out;
      },
    };
  }

  // The "residual" score's half: features (F float32 values) -> ||z - B (B^T z)||, z = features - mean,
  // in float64 with torch's order of steps ((z @ B) @ B.T, then the difference, then the norm).
  function residualStep(rank, mean, basis) {
    const n = mean.length;
    const z = new Float64Array(n), p = new Float64Array(rank);
    return {
      run(f) {
        for (let i = 0; i < n; i++) z[i] = f[i] - mean[i];
        p.fill(0);
        for (let i = 0, k = 0; i < n; i++) {
          const zi = z[i];
          for (let j = 0; j < rank; j++, k++) p[j] += zi * basis[k];
        }
        let sum = 0;
        for (let i = 0, k = 0; i < n; i++) {
          let q = 0;
          for (let j = 0; j < rank; j++, k++) q += p[j] * basis[k];
          const r = z[i] - q;
          sum += r * r;
        }
        return Math.sqrt(sum);
      },
    };
  }

  /** Probabilities from logits, shifted by their max so that exp never overflows. */
  function softmax(logits) {
    const top = Math.max(...logits);
    const p = Float32Array.from(logits, (z) => Math.exp(z - top));
    const total = p.reduce((a, b) => a + b, 0);
    return p.map((v) => v / total);
  }

  /** One network, built from a header and its float32 weights; `forward` runs it on one image. */
  class Net {
    constructor(header, float32Weights) {
      if (!header || header.format !== FORMAT) {
        throw new Error(`unsupported model format ${header && header.format}; expected ${FORMAT}`);
      }
      if (float32Weights.length !== header.floats) {
        throw new Error(`${float32Weights.length} weights, the header says ${header.floats}`);
      }
      const weights = Float64Array.from(float32Weights);
      this.header = header;
      this.hash = header.hash;
      this.inputSize = header.input.reduce((a, b) => a * b, 1);
      this.steps = [];
      let shape = header.input;
      header.layers.forEach((layer, n) => {
        const what = `layer ${n} (${layer.op})`;
        const next = header.layers[n + 1];
        const size = shape.reduce((a, b) => a * b, 1);
        let step;
        if (layer.op === "crop") {
          step = crop(shape, layer.pixels);
        } else if (layer.op === "conv3x3") {
          if (layer.in !== shape[0]) throw new Error(`${what} expects ${layer.in} channels, gets ${shape[0]}`);
          const pooled = next && next.op === "maxpool2";
          const [h, w] = pooled ? [shape[1] & ~1, shape[2] & ~1] : [shape[1], shape[2]];
          const weight = tensor(weights, layer.weight, [layer.out, layer.in, 3, 3], what);
          step = conv3x3(shape, layer.out, weight, h, w);
        } else if (layer.op === "maxpool2") {
          step = maxpool2(shape);
        } else if (layer.op === "affine") {
          const scale = tensor(weights, layer.scale, [shape[0]], what);
          step = affine(shape, scale, tensor(weights, layer.shift, [shape[0]], what));
        } else if (layer.op === "relu") {
          step = relu(shape);
        } else if (layer.op === "linear") {
          if (layer.in !== size) throw new Error(`${what} expects ${layer.in} inputs, gets ${size}`);
          const weight = tensor(weights, layer.weight, [layer.out, layer.in], what);
          step = linear(layer.in, layer.out, weight, tensor(weights, layer.bias, [layer.out], what));
          this.featureStep = this.steps.length; // the last linear's input: the features before the classifier
        } else {
          throw new Error(`${what}: unknown layer`);
        }
        this.steps.push(step);
        shape = step.shape;
      });
      if (shape[0] !== header.classes || this.featureStep === undefined) {
        throw new Error(`the network should end in a linear layer with ${header.classes} outputs`);
      }
      this.residual = null;
      if (header.residual) {
        const { features, rank } = header.residual;
        const width = header.layers[header.layers.length - 1].in; // the classifier's input
        if (features !== width || !Number.isInteger(rank) || rank < 1 || rank > features) {
          throw new Error(`the residual's subspace (${features} features, rank ${rank}) does not fit ${width}`);
        }
        const mean = tensor(weights, header.residual.mean, [features], "the residual's mean");
        const basis = tensor(weights, header.residual.basis, [features, rank], "the residual's basis");
        this.residual = residualStep(rank, mean, basis);
      }
      this.input = new Float64Array(this.inputSize);
    }

    /** `image`: 784 normalised values ((x - mean) / std, row-major 28x28) -> logits, probabilities, features,
     *  residual (null without a subspace). */
    forward(image) {
      if (!image || image.length !== this.inputSize) {
        throw new Error(`the network reads ${this.inputSize} values, got ${image && image.length}`);
      }
      this.input.set(image);
      let x = this.input, features = x;
      this.steps.forEach((step, n) => {
        if (n === this.featureStep) features = x;
        x = step.run(x);
      });
      const logits = Float32Array.from(x);
      const float32 = Float32Array.from(features); // the residual reads these, as torch reads its float32 features
      const residual = this.residual ? this.residual.run(float32) : null;
      return { logits, probabilities: softmax(logits), features: float32, residual };
    }
  }

  /** A Net from what the server sends: {header, weights} with the weights in base64. */
  function fromPayload(payload) {
    return new Net(payload.header, decodeWeights(payload.weights, payload.header.floats));
  }

  globalThis.MnistNet = { FORMAT, Net, fromPayload, decodeWeights, softmax };
})();
