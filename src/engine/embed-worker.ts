// Worker-thread entry that owns one image session: a batch inferred on the main thread would freeze decoding and
// preprocessing for its whole duration.
import { ImageEmbedder } from "./embed.ts";
import { serveTower, type TowerRequest } from "./tower-thread.ts";

export type EmbedRequest = TowerRequest<{ pixels: Float32Array; count: number }>;

serveTower((model, session) => ImageEmbedder.open(model, session), (tower, input: { pixels: Float32Array; count: number }) => tower.embed(input.pixels, input.count));
