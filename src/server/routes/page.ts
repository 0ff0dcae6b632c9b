// GET /: the search page, one self-contained HTML file (inline CSS and JS, no build step).
import { Hono } from "hono";
import page from "../page/search-page.html" with { type: "text" };

const html = page as unknown as string;

export function pageRoutes() {
  return new Hono().get("/", (c) => c.html(html));
}
