export const USAGE = `imgd — index photos with CLIP and search them by text or image

usage:
  imgd index DIR... [--index PATH] [--models DIR] [--model NAME] [--batch N] [--threads N]
                    [--list FILE] [--follow-symlinks] [--dtype f32|f16|i8] [--profile DIR] [--json]
  imgd query "TEXT" [--index PATH] [-k N] [--image FILE] [--offset N] [--path-prefix P]
                    [--after DATE] [--before DATE] [--json] [--copy-to DIR | --link-to DIR]
  imgd info [--index PATH] [--errors] [--json]
  imgd models list|verify|pull [NAME] [--models DIR]
  imgd serve [--index PATH] [--port N] [--host ADDR] [--token T] [--cors ORIGIN] [--root DIR]...
             [--max-concurrency N] [--log FILE] [--threads N] [--batch-wait-ms MS] [--batch-max N]
  imgd version

defaults: --index ./.imgd   --model clip-vit-b32   --batch 32   --threads = cores
models are looked up in --models, $IMGD_MODELS, ./models, ~/.cache/imgd/models
`;

export class UsageError extends Error {
  override name = "UsageError";
}
