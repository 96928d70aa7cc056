// Runs a wasm32-wasip1 test binary (what `cargo test --target wasm32-wasip1` builds) under
// Node's built-in WASI, so the crate's unit tests execute on the filter's real target.
// Used as CARGO_TARGET_WASM32_WASIP1_RUNNER; cargo passes the module path, then test args.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { argv, env, exit } from "node:process";

const [modulePath, ...args] = argv.slice(2);
const wasi = new WASI({ version: "preview1", args: [modulePath, ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(modulePath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
