// GET /: the search page, one self-contained HTML file (inline CSS and JS, no build step).
import { Hono } from "hono";
import { IMAGE_EXTENSIONS } from "../../engine/scan.ts";
import page from "../page/search-page.html" with { type: "text" };

// The image picker offers every file the index takes by its extension too: image/* alone leaves out what the
// browser's or the system's type table does not call an image (a .CR3 or .RAF nearly everywhere, .heic on some).
const accept = ["image/*", ...[...IMAGE_EXTENSIONS].map((ext) => `.${ext}`)].join(",");
const html = (page as unknown as string).replace("{{IMAGE_ACCEPT}}", accept);

export function pageRoutes() {
  return new Hono().get("/", (c) => c.html(html));
}
