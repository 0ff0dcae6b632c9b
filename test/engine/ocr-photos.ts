// Real photographs with known words drawn onto them (SVG text composited by sharp): several fonts installed here,
// sizes, rotations (one upside down), dark-on-light and light-on-dark signs and outlined text straight on the photo.
// Shared by test/engine/ocr.test.ts and bench/ocr.ts; the planted words are the ground truth.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";

export const PHOTOS = join(import.meta.dir, "..", "..", "..", "shared", "photos");

export type TextStyle = "dark-on-light" | "light-on-dark" | "outlined";

export interface PlantedLine {
  text: string;
  /** Centre of the line in output pixels. */
  cx: number;
  cy: number;
  size: number;
  font: string;
  bold?: boolean;
  /** Degrees clockwise. */
  angle?: number;
  style: TextStyle;
  /** Sign colour (light-on-dark) or text colour (dark-on-light); defaults per style. */
  colour?: string;
}

export interface OcrPhotoCase {
  name: string;
  photo: string;
  /** Output size; the photo is resized (cover) to it. */
  width: number;
  height: number;
  format: "png" | "jpeg";
  lines: PlantedLine[];
  /** Near the limits of the models (tiny, steep or faint text): counted in the accuracy, not required by tests. */
  hard?: boolean;
}

export const OCR_CASES: OcrPhotoCase[] = [
  { name: "exit-sign", photo: "fruits.jpg", width: 512, height: 480, format: "png",
    lines: [{ text: "EXIT", cx: 256, cy: 120, size: 56, font: "DejaVu Sans", bold: true, style: "light-on-dark", colour: "#0a7a3a" }] },
  { name: "station", photo: "building.jpg", width: 868, height: 600, format: "png",
    lines: [{ text: "Central Station", cx: 434, cy: 300, size: 40, font: "DejaVu Serif", style: "dark-on-light" }] },
  { name: "bakery", photo: "home.jpg", width: 512, height: 384, format: "png",
    lines: [{ text: "BAKERY", cx: 256, cy: 90, size: 44, font: "Liberation Sans Narrow", bold: true, style: "light-on-dark", colour: "#5a2d0c" }] },
  { name: "harbour-outlined", photo: "aero1.jpg", width: 640, height: 480, format: "png",
    lines: [{ text: "Harbour 2024", cx: 320, cy: 380, size: 40, font: "Liberation Mono", bold: true, style: "outlined" }] },
  { name: "museum-tilted", photo: "rocket.jpg", width: 640, height: 427, format: "png",
    lines: [{ text: "Museum", cx: 330, cy: 200, size: 52, font: "Liberation Serif", angle: -12, style: "light-on-dark", colour: "#20305a" }] },
  { name: "library-small-tilted", photo: "starry_night.jpg", width: 752, height: 600, format: "png",
    lines: [{ text: "Library", cx: 380, cy: 420, size: 30, font: "DejaVu Sans", angle: 8, style: "dark-on-light" }] },
  { name: "coffee-mono", photo: "chelsea.png", width: 451, height: 300, format: "png",
    lines: [{ text: "Coffee", cx: 110, cy: 250, size: 28, font: "DejaVu Sans Mono", style: "dark-on-light", colour: "#6b1f1f" }] },
  { name: "open-sign", photo: "coffee.png", width: 600, height: 400, format: "png",
    lines: [{ text: "OPEN", cx: 470, cy: 80, size: 60, font: "Liberation Sans", bold: true, style: "light-on-dark", colour: "#b01818" }] },
  { name: "pharmacy-outlined", photo: "baboon.jpg", width: 512, height: 512, format: "png",
    lines: [{ text: "Pharmacy", cx: 256, cy: 440, size: 44, font: "DejaVu Serif", bold: true, style: "outlined" }] },
  { name: "garden-upside-down", photo: "astronaut.png", width: 512, height: 512, format: "png",
    lines: [{ text: "Garden", cx: 256, cy: 420, size: 44, font: "Liberation Serif", angle: 180, style: "dark-on-light" }] },
  { name: "parking-two-signs", photo: "motorcycle_left.png", width: 741, height: 500, format: "png",
    lines: [
      { text: "PARKING", cx: 200, cy: 70, size: 40, font: "Liberation Sans Narrow", style: "light-on-dark", colour: "#1040a0" },
      { text: "Market", cx: 560, cy: 430, size: 34, font: "DejaVu Sans", style: "dark-on-light" },
    ] },
  { name: "hotel-sizes", photo: "smarties.png", width: 413, height: 356, format: "png",
    lines: [
      { text: "Hotel", cx: 100, cy: 40, size: 24, font: "DejaVu Sans", bold: true, style: "dark-on-light" },
      { text: "Garage", cx: 260, cy: 300, size: 48, font: "Liberation Serif", bold: true, style: "light-on-dark", colour: "#333333" },
    ] },
  { name: "bridge-steep", photo: "apple.jpg", width: 512, height: 512, format: "png",
    lines: [{ text: "Bridge", cx: 256, cy: 256, size: 44, font: "DejaVu Sans", angle: 25, style: "light-on-dark", colour: "#402060" }] },
  { name: "ticket-office-tiny", photo: "coffee.png", width: 600, height: 400, format: "png", hard: true,
    lines: [{ text: "Ticket Office", cx: 150, cy: 360, size: 15, font: "DejaVu Sans", style: "dark-on-light" }] },
  { name: "platform-40-degrees", photo: "home.jpg", width: 512, height: 384, format: "png", hard: true,
    lines: [{ text: "Platform 9", cx: 256, cy: 200, size: 36, font: "Liberation Sans", angle: 40, style: "light-on-dark", colour: "#204020" }] },
  { name: "welcome-faint", photo: "orange.jpg", width: 512, height: 512, format: "png", hard: true,
    lines: [{ text: "Welcome", cx: 256, cy: 100, size: 40, font: "DejaVu Serif", style: "dark-on-light", colour: "#b8b0a0" }] },
  { name: "tunnel-camera-jpeg", photo: "basketball1.png", width: 2400, height: 1800, format: "jpeg",
    lines: [{ text: "Tunnel North", cx: 1200, cy: 380, size: 120, font: "DejaVu Sans", style: "dark-on-light" }] },
];

/** The words a case plants (what a reader should find), split like the text index splits them. */
export function plantedWords(c: OcrPhotoCase): string[] {
  return c.lines.flatMap((l) => l.text.split(/\s+/));
}

/** Writes every case into `dir` (skipping files already there) and returns path + case. */
export async function writeOcrPhotos(dir: string): Promise<{ path: string; case: OcrPhotoCase }[]> {
  mkdirSync(dir, { recursive: true });
  const sharp = loadSharp();
  const out: { path: string; case: OcrPhotoCase }[] = [];
  for (const c of OCR_CASES) {
    const path = join(dir, `${c.name}.${c.format === "png" ? "png" : "jpg"}`);
    if (!existsSync(path)) {
      const overlay = Buffer.from(svgFor(c));
      const base = sharp(join(PHOTOS, c.photo)).removeAlpha().resize(c.width, c.height, { fit: "cover" });
      const composed = sharp(await base.png().toBuffer()).composite([{ input: overlay, left: 0, top: 0 }]);
      await (c.format === "png" ? composed.png() : composed.jpeg({ quality: 90 })).toFile(`${path}.tmp`);
      renameSync(`${path}.tmp`, path);
    }
    out.push({ path, case: c });
  }
  return out;
}

/** The sign behind a line, wide enough for any of the fonts used (about 0.62 em per character, plus padding). */
export function signRect(l: PlantedLine): { x: number; y: number; width: number; height: number } {
  const width = Math.ceil(l.text.length * l.size * (l.bold ? 0.68 : 0.62) + l.size);
  const height = Math.ceil(l.size * 1.6);
  return { x: l.cx - width / 2, y: l.cy - height / 2, width, height };
}

function svgFor(c: OcrPhotoCase): string {
  const parts = c.lines.map((l) => {
    const r = signRect(l);
    const sign =
      l.style === "outlined"
        ? ""
        : `<rect x="${r.x}" y="${r.y}" width="${r.width}" height="${r.height}" rx="${l.size / 8}" fill="${
            l.style === "light-on-dark" ? (l.colour ?? "#202020") : "#f4f1e8"
          }"/>`;
    const fill = l.style === "dark-on-light" ? (l.colour ?? "#111111") : "#ffffff";
    const stroke = l.style === "outlined" ? ` stroke="#000000" stroke-width="${Math.max(2, l.size / 14)}" paint-order="stroke"` : "";
    // The baseline sits about 0.35 em below the line's centre for these fonts.
    const text = `<text x="${l.cx}" y="${l.cy + l.size * 0.35}" text-anchor="middle" font-family="${l.font}" font-size="${l.size}"${
      l.bold ? ' font-weight="bold"' : ""
    } fill="${fill}"${stroke}>${l.text}</text>`;
    return `<g transform="rotate(${l.angle ?? 0} ${l.cx} ${l.cy})">${sign}${text}</g>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${c.width}" height="${c.height}">${parts.join("")}</svg>`;
}
