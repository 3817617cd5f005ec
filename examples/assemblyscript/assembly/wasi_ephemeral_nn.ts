// @ts-nocheck: AssemblyScript (u32, usize), compiled by asc, not by tsc.
/**
 * The raw imports of the `wasi_ephemeral_nn` module, one per host function.
 *
 * AssemblyScript names the import module of a `declare function` after the
 * file that declares it, so this file must be called `wasi_ephemeral_nn.ts`.
 * (The `@external("wasi_ephemeral_nn", "...")` decorator does the same
 * explicitly, but `deno fmt` does not understand decorators on functions
 * and would delete it.)
 *
 * Every parameter is an i32 on the wire: pointers and lengths are `usize`/
 * `u32`, handles are `u32`. Every function returns an errno (0 = success)
 * and writes its results (handles, byte counts) through out-pointers.
 * Most guests should use the helpers in `wasi_nn.ts` instead.
 */

/** builders: `builders_len` pairs {u32 ptr, u32 len}; entry 0 = model bytes or "preload:<path>", entry 1 = config JSON. */
export declare function load(
  builders: usize,
  builders_len: u32,
  encoding: u32,
  target: u32,
  out_graph: usize,
): i32;

/** A model the host preloaded under a name (UTF-8, no NUL needed). */
export declare function load_by_name(
  name: usize,
  name_len: u32,
  out_graph: usize,
): i32;

/** The same with a config JSON object ({"n-predict":32,...}). */
export declare function load_by_name_with_config(
  name: usize,
  name_len: u32,
  config: usize,
  config_len: u32,
  out_graph: usize,
): i32;

/** A new execution context on a graph. */
export declare function init_execution_context(
  graph: u32,
  out_ctx: usize,
): i32;

/** index 0 = prompt, index 1 = config JSON; tensor = 20-byte record. */
export declare function set_input(ctx: u32, index: u32, tensor: usize): i32;

/** Generate to the end (n-predict, end of sequence or a full context). */
export declare function compute(ctx: u32): i32;

/** index 0 = text, index 1 = metadata JSON; TooLarge (7) writes the size. */
export declare function get_output(
  ctx: u32,
  index: u32,
  out_buf: usize,
  out_buf_max_len: u32,
  out_written: usize,
): i32;

/** Like get_output; index 0 = the latest token's text. */
export declare function get_output_single(
  ctx: u32,
  index: u32,
  out_buf: usize,
  out_buf_max_len: u32,
  out_written: usize,
): i32;

/** One token per call; 100 (EndOfSequence) when the model is done. */
export declare function compute_single(ctx: u32): i32;

/** End a stream. */
export declare function fini_single(ctx: u32): i32;

/** Forget a graph. */
export declare function unload(graph: u32): i32;

/** Drop an execution context. */
export declare function finalize_execution_context(ctx: u32): i32;
