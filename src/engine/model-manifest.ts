// What a model manifest says, how one is validated, and the manifests compiled into the binary so
// `imgd models list|pull` works without a checkout.
import { z } from "zod";
import clipVitB32 from "../../models/clip-vit-b32.json";
import clipVitB32Q8 from "../../models/clip-vit-b32-q8.json";
import mobileclipS0 from "../../models/mobileclip-s0.json";
import testClip from "../../models/test-clip.json";
import type { PreprocessSpec, TokenizerSpec } from "./types.ts";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits");
const rgb = z.tuple([z.number(), z.number(), z.number()]);

const towerFile = {
  /** File name inside `<models dir>/<model name>/`. */
  file: z.string().min(1).refine((f) => !/[\\/]|^\.\.?$/.test(f), "file must be a plain file name"),
  url: z.url().optional(),
  /** Only where the publisher states one; unknown hashes are left out, never guessed. */
  sha256: sha256Hex.optional(),
  input: z.string().min(1),
  output: z.string().min(1),
};

const manifestSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "name must be lowercase letters, digits, . _ -"),
  description: z.string(),
  dims: z.number().int().positive(),
  license: z.string(),
  source: z.string(),
  /** For models built locally rather than downloaded: the command that builds them. */
  generate: z.string().optional(),
  image: z.object(towerFile),
  text: z.object({ ...towerFile, attentionMaskInput: z.string().min(1).optional() }),
  preprocess: z.object({
    size: z.number().int().positive(),
    interpolation: z.enum(["bicubic", "bilinear"]),
    mean: rgb,
    std: rgb.refine((s) => s.every((v) => v > 0), "std must be positive"),
  }),
  tokenizer: z.object({
    kind: z.literal("clip-bpe"),
    contextLength: z.number().int().positive(),
    vocab: z.string().min(1),
    // "longest" runs the text tower over as many positions as the batch's longest text instead of contextLength.
    // It is exact only for a causal tower that pools at the end-of-text token (OpenAI CLIP): no position up to the
    // end token sees the padding after it. A tower exported with a fixed [batch, 77] input, or one that attends
    // both ways (MobileCLIP-S0's text encoder is not causal), needs "max_length".
    padding: z.enum(["longest", "max_length"]).default("max_length"),
  }),
});

export interface TowerFile {
  file: string;
  url?: string;
  sha256?: string;
  input: string;
  output: string;
}

export interface ModelManifest {
  name: string;
  description: string;
  dims: number;
  license: string;
  source: string;
  generate?: string;
  image: TowerFile;
  text: TowerFile & { attentionMaskInput?: string };
  preprocess: PreprocessSpec;
  tokenizer: TokenizerSpec;
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/** `origin` (a path or "built-in") only makes the error say which manifest is wrong. */
export function parseManifest(value: unknown, origin: string): ModelManifest {
  const result = manifestSchema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ManifestError(`invalid model manifest ${origin}: ${issues}`);
  }
  return result.data;
}

export const BUILT_IN_MANIFESTS: readonly ModelManifest[] = [clipVitB32, clipVitB32Q8, mobileclipS0, testClip].map((m) =>
  parseManifest(m, `built-in ${m.name}`),
);
