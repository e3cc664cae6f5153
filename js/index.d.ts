/** Offsets are UTF-16 code units into the text you passed: `text.slice(start, end) === span.text`. */
export interface Span { label: string; start: number; end: number; text: string }
/** A sub-word token with its tag; `score` is its probability (softmax) or CRF marginal. */
export interface TaggedToken { text: string; start: number; end: number; tag: string; score: number }
export interface Tagging { tokens: TaggedToken[]; spans: Span[] }
/** classify / relate result: the best label, its probability, and every label's probability. */
export interface Prediction { label: string; score: number; scores: Record<string, number> }
/** A span of the text, in UTF-16 code units, end exclusive. */
export interface TextSpan { start: number; end: number }
export interface ModelInfo {
  task: "classify" | "tag" | "relate";
  head: Record<string, unknown>;
  labels: string[];
  hidden_size: number; layers: number; heads: number; vocab_size: number; max_tokens: number; parameters: number;
  /** Threads the kernels use: 1 single-threaded, more with a threaded build. */
  threads: number;
  /** The wasm build running (see buildName). */
  build: "baseline" | "relaxed" | "threads" | "threads-relaxed";
  /** Bytes of wasm linear memory the module holds now (see memoryBytes). */
  memoryBytes: number;
}
/** "auto": all cores where the threaded build can run (a worker of a cross-origin isolated page;
 *  Node), else 1. A number asks for that many threads; 1 = the single-threaded build. */
export type Threads = "auto" | number;
export interface Progress { loaded: number; total?: number; file: string }
export interface LoadOptions {
  /** Called as bytes arrive (total is known when the server sends Content-Length). */
  onProgress?: (p: Progress) => void;
  /** Keep the files in the Cache API for offline use (default true). */
  cache?: boolean;
  fetch?: typeof fetch;
  /** Decided by the first load/init of the page or worker (default "auto"). */
  threads?: Threads;
  /** SRI-style hashes per file, checked before the bytes reach wasm, e.g.
   *  `{ "model.safetensors": "sha256-…" }`; a mismatch rejects and nothing is cached. */
  integrity?: Partial<Record<"config.json" | "tokenizer.json" | "model.safetensors", string>>;
  /** The model's version (e.g. from a manifest): a cached copy of the same version is used
   *  without a request, another version is fetched anew. Without it the cached copy is
   *  revalidated (ETag / Last-Modified) on every load. */
  version?: string;
}
export interface WorkerLoadOptions extends Omit<LoadOptions, "fetch"> {
  /** Milliseconds before the load rejects (the worker is then stopped: create a new one). */
  timeout?: number;
}
export type ClassifyInput = string | [string, string] | { text: string; textPair?: string };

export class Model {
  /** Fetches config.json, tokenizer.json, model.safetensors from baseUrl and builds the model. */
  static load(baseUrl: string | URL, options?: LoadOptions): Promise<Model>;
  /** Builds a model from the three files' bytes (after init()/initSync()). */
  static fromBytes(config: Uint8Array, tokenizer: Uint8Array, weights: Uint8Array): Model;
  classify(text: string, textPair?: string): Prediction;
  classifyBatch(inputs: ClassifyInput[]): Prediction[];
  tag(text: string): Tagging;
  tagBatch(texts: string[]): Tagging[];
  relate(text: string, head: TextSpan, tail: TextSpan): Prediction;
  relateBatch(inputs: { text: string; head: TextSpan; tail: TextSpan }[]): Prediction[];
  info(): ModelInfo;
  /** Caps tokens per encoder pass; longer tag inputs are windowed (bounds memory). */
  setMaxTokens(n: number): void;
  /** Releases the model's wasm memory. */
  free(): void;
}

/** The same API in a Web Worker, every call async. */
export interface WorkerModel {
  load(baseUrl: string | URL, options?: WorkerLoadOptions): Promise<ModelInfo>;
  classify(text: string, textPair?: string): Promise<Prediction>;
  classifyBatch(inputs: ClassifyInput[]): Promise<Prediction[]>;
  tag(text: string): Promise<Tagging>;
  tagBatch(texts: string[]): Promise<Tagging[]>;
  relate(text: string, head: TextSpan, tail: TextSpan): Promise<Prediction>;
  relateBatch(inputs: { text: string; head: TextSpan; tail: TextSpan }[]): Promise<Prediction[]>;
  info(): Promise<ModelInfo>;
  /** Stops the worker; pending and later calls reject. */
  terminate(): void;
}
/** If the worker fails to start or dies, every pending and later call rejects with an Error. */
export function createWorker(options?: string | URL | { url?: string | URL }): WorkerModel;

/** Browser: instantiates the wasm module (fetched next to this file), picking the build as ensureInit does. */
export default function init(moduleOrPath?: unknown, options?: { threads?: Threads }): Promise<unknown>;
export function initSync(options: { module: BufferSource | WebAssembly.Module }): unknown;
export function ensureInit(moduleOrPath?: unknown, options?: { threads?: Threads }): Promise<unknown>;
/** Threads the kernels use (1 when single-threaded). */
export function threadCount(): number;
/** Bytes of wasm linear memory the module holds now: it grows and never shrinks, so a number
 *  that keeps rising over calls would be a leak; 0 before init. */
export function memoryBytes(): number;
/** The wasm build running: "baseline" (SIMD), "relaxed" (+ relaxed SIMD), "threads", "threads-relaxed". */
export function buildName(): "baseline" | "relaxed" | "threads" | "threads-relaxed";
/** The int8 kernel q8/q4 models run in this engine ("relaxed-dot", "relaxed-pairs", "simd128", "avx512-vnni",
 * ...), after checking every kernel the build has against the portable one; throws where one
 * differs. For tests and diagnostics. */
export function int8KernelCheck(): { kernel: string; checked: string[] };

/** Node only: instantiates the wasm module, threaded by default (call before fromBytes). */
export function init(options?: { threads?: Threads }): Promise<void>;
/** Node only: load a model folder from disk (instantiating the module as `init` does). */
export function loadModel(dir: string, options?: { threads?: Threads }): Promise<Model>;
/** Node only: from bytes, instantiating the wasm module on first use. */
export function fromBytes(config: Uint8Array, tokenizer: Uint8Array, weights: Uint8Array): Model;
