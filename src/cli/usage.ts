export const USAGE = `imgd — index photos with CLIP and search them by text or image

usage:
  imgd index DIR... [--index PATH] [--models DIR] [--model NAME] [--batch N] [--threads N]
                    [--list FILE] [--follow-symlinks] [--exclude-dir NAME]... [--allow-empty] [--dtype i8|f16|f32]
                    [--connectivity N] [--profile DIR] [--memory-target-mb MB] [--json] [-q|--quiet]
                    [--faces [--face-detector NAME] [--face-embedder NAME]] [--objects [--object-model NAME]] [--ocr]
  imgd query "TEXT" [--index PATH] [--models DIR] [-k N] [--image FILE] [--offset N] [--path-prefix P]
                    [--after DATE] [--before DATE] [--has LABEL]... [--text-in WORDS] [--person NAME]...
                    [--json] [--copy-to DIR | --link-to DIR] [--server URL] [--token T | --token-file F]
                    (--server searches a running imgd serve; on an index that one serves, a query goes through it)
  imgd info [--index PATH] [--errors] [--json]
  imgd models [list] | verify NAME | pull NAME [--to DIR]   [--models DIR] [--json]
  imgd serve [--index PATH] [--models DIR] [--port N] [--host ADDR] [--allowed-host NAME]... [--token T] [--cors ORIGIN]
             [--root DIR]... [--max-concurrency N] [--target-latency-ms MS] [--memory-target-mb MB] [--image-idle-s S]
             [--log FILE] [--threads N] [--batch-wait-ms MS] [--batch-max N]
             [--faces [--face-detector NAME] [--face-embedder NAME]] [--objects [--object-model NAME]] [--ocr]
             (stages run on ingested images)
  imgd coordinator DIR... --storage DIR [--port N] [--bind ADDR] [--token T | --token-file F] [--batch N]
                    [--lease-ttl S] [--min-free-mb MB] [--exclude-dir NAME]... [--model NAME] [--models DIR]
                    [--serve] [--plain]
                    [--faces [--face-detector NAME] [--face-embedder NAME]] [--objects [--object-model NAME]] [--ocr]
                    (--serve: stays up after the merge and answers imgd serve's API and page, mesh token as bearer)
  imgd worker --coordinator URL [--token T | --token-file F] [--threads N] [--batch N] [--storage DIR]
              [--path-map FROM=TO]... [--host NAME] [--models DIR] [--no-fetch-models] [--memory-target-mb MB]
  imgd deploy --hosts FILE --coordinator URL [--token T | --token-file F] [--binary PATH] [-i KEY]
              [--known-hosts FILE] [--accept-new] [--threads N] [--wait-s 30]
  imgd deploy status|stop|logs [HOST] --hosts FILE [-n LINES]   (no HOST: every host in FILE)
  imgd export --parquet OUT [--index PATH | --storage DIR] [--path-map FROM=TO]...
  imgd dups [--index PATH] [--near T] [--exact-only] [--json]
  imgd faces cluster [--min-size N] [--min-samples N] | suggest [--threshold T] | list --image ID | similar FACE_ID [-k N]
             | settings [--assign-threshold T] [--suggest-threshold T]   [--index PATH] [--json]
  imgd persons list [--named|--unnamed] | show PERSON | name PERSON NAME | delete PERSON | merge TARGET SOURCE...
               | split PERSON FACE_ID... [--name NAME] | assign FACE_ID... (--to PERSON | --none)
               | suggestions PERSON | reject PERSON FACE_ID...   [--index PATH] [--json] [--limit N]
  imgd bench ingest --dir DIR --url URL [--workers 16] [--batch 64] [--queue 1024] [--report 10]
                    [--duration S] [--token T] [--json]
  imgd version   (or imgd --version; imgd help COMMAND or imgd COMMAND --help for one command)

defaults: --index ./.imgd   --model clip-vit-b32 (an existing index or job: its own)   --batch 32 (worker: 8; coordinator: 64 files per lease)   --threads = cores   --dtype i8
          --face-detector scrfd-10g   --face-embedder arcface-r50   --object-model yolov8n (an existing index or job: the ones its stage last ran)
models are looked up in --models, $IMGD_MODELS, ./models, ~/.cache/imgd/models
`;

/** The usage lines of one command (and the defaults), or everything for an unknown one. */
export function usageFor(command: string | undefined): string {
  const lines = USAGE.split("\n");
  const start = `  imgd ${command}`;
  const own: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (line.startsWith("  imgd ")) inside = line === start || line.startsWith(`${start} `);
    else if (!line.startsWith("   ")) inside = false;
    if (inside) own.push(line);
  }
  if (own.length === 0) return USAGE;
  return [`usage:`, ...own, "", ...defaultsFor(own.join(" "), lines)].join("\n");
}

/** The defaults of the flags a command's usage names: deploy's help has no business listing --dtype. */
function defaultsFor(usage: string, lines: string[]): string[] {
  const from = lines.findIndex((l) => l.startsWith("defaults:"));
  const items = lines
    .slice(from, from + 2)
    .join(" ")
    .replace(/^defaults:/, "")
    .split(/\s{3,}/)
    .map((item) => item.trim())
    .filter((item) => item !== "" && usage.includes(`[${item.split(" ")[0]} `));
  const out: string[] = [];
  for (const item of items) {
    const last = out.at(-1);
    if (last !== undefined && last.length + 3 + item.length <= 120) out[out.length - 1] = `${last}   ${item}`;
    else out.push(`${last === undefined ? "defaults:" : "         "} ${item}`);
  }
  const models = lines.find((l) => l.startsWith("models are looked up"));
  if (models && /--models? /.test(usage)) out.push(models);
  return [...out, ""];
}

export class UsageError extends Error {
  override name = "UsageError";
}
