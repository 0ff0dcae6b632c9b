// Worker-thread entry that owns the text tower: on a server's one JS thread a CLIP text run (~10 ms) would stall
// every other request meanwhile.
import { TextEmbedder } from "./embed.ts";
import { serveTower, type TowerRequest } from "./tower-thread.ts";

export type TextEmbedRequest = TowerRequest<{ texts: string[] }>;

serveTower((model, session) => TextEmbedder.open(model, session), (tower, input: { texts: string[] }) => tower.embed(input.texts));
