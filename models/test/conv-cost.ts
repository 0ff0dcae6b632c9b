// What the conv-net cost stand-ins share (yolo-cost, scrfd-cost, arcface-cost): a node list, seeded random weights
// shared by every conv of one shape (small files, the real arithmetic), and a Conv builder that counts
// multiply-accumulates. Each generator brings its weight scale and activation.
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { floatTensor, type Node, type Tensor } from "./onnx-writer.ts";

export interface ConvNetOptions {
  seed: number;
  /** Half-range of the uniform weights of a conv with `fanIn` inputs per output. */
  weightHalfRange: (fanIn: number) => number;
  /** The activation after a conv; `output` names its result when the caller asked for a name. */
  activate: (net: ConvNet, y: string, output?: string) => string;
}

export interface ConvOptions {
  /** false: the conv alone (a head's logits), no activation. */
  act?: boolean;
  bias?: number;
  output?: string;
}

export type ConvNet = ReturnType<typeof convNet>;

export function convNet(opts: ConvNetOptions) {
  const rand = mulberry32(opts.seed);
  const nodes: Node[] = [];
  const initializers: Tensor[] = [];
  const shared = new Map<string, string>();
  let macs = 0;
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}_${counter++}`;
  /** Adds a node; returns its (first) output. */
  const op = (opType: string, inputs: string[], attributes?: Node["attributes"], outputs: string | string[] = fresh(opType.toLowerCase())) => {
    const outs = typeof outputs === "string" ? [outputs] : outputs;
    nodes.push({ opType, inputs, outputs: outs, attributes });
    return outs[0]!;
  };
  const constant = (t: Tensor) => {
    initializers.push(t);
    return t.name;
  };
  const net = {
    nodes,
    initializers,
    op,
    constant,
    fresh,
    macs: () => macs,
    /** Conv (+ the activation) on a [n, cin, side, side] map; returns the output name and its side. */
    conv(x: string, side: number, cin: number, cout: number, k: number, s = 1, o: ConvOptions = {}) {
      const key = `${cout}x${cin}x${k}`;
      let w = shared.get(key);
      if (!w) {
        const half = opts.weightHalfRange(cin * k * k);
        w = constant(floatTensor(`w_${key}`, [cout, cin, k, k], Float32Array.from({ length: cout * cin * k * k }, () => (rand() * 2 - 1) * half)));
        shared.set(key, w);
      }
      const b = constant(floatTensor(fresh("b"), [cout], new Float32Array(cout).fill(o.bias ?? 0)));
      const pad = Math.floor(k / 2);
      const out = side / s;
      macs += out * out * cout * cin * k * k;
      const act = o.act ?? true;
      const attrs = { kernel_shape: [k, k], strides: [s, s], pads: [pad, pad, pad, pad] };
      const y = act ? op("Conv", [x, w, b], attrs) : op("Conv", [x, w, b], attrs, o.output ?? fresh("conv"));
      return { y: act ? opts.activate(net, y, o.output) : y, side: out };
    },
  };
  return net;
}
