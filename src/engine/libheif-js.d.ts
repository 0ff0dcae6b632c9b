// libheif-js ships typings for its separate-wasm build only; its bundle with the wasm inline is the same module.
declare module "libheif-js/libheif-wasm/libheif-bundle.js" {
  const createModule: () => unknown;
  export default createModule;
}
